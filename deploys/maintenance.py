"""Turn maintenance mode on or off (--data onebox_maintenance=on|off): `pyinfra inventories/prod.py deploys/maintenance.py`.

It runs onebox's own deploy file from the installed package, so upgrading onebox updates it.
"""

from onebox.kit import run_deploy_file

run_deploy_file("maintenance")
