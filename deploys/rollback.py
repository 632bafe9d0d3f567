"""Roll back to the previous release (or --data onebox_rollback_to=RELEASE_ID): `pyinfra inventories/prod.py deploys/rollback.py`.

It runs onebox's own deploy file from the installed package, so upgrading onebox updates it.
"""

from onebox.kit import run_deploy_file

run_deploy_file("rollback")
