"""Restore a backup (see `onebox restore --help`): `pyinfra inventories/prod.py deploys/restore.py`.

It runs onebox's own deploy file from the installed package, so upgrading onebox updates it.
"""

from onebox.kit import run_deploy_file

run_deploy_file("restore")
