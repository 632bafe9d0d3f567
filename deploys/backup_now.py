"""Take a backup now: `pyinfra inventories/prod.py deploys/backup_now.py`.

It runs onebox's own deploy file from the installed package, so upgrading onebox updates it.
"""

from onebox.kit import run_deploy_file

run_deploy_file("backup_now")
