"""Delete a removed app's data for good (see `onebox purge --help`): `pyinfra inventories/prod.py deploys/purge.py`.

It runs onebox's own deploy file from the installed package, so upgrading onebox updates it.
"""

from onebox.kit import run_deploy_file

run_deploy_file("purge")
