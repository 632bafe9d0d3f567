"""Converge the inventory's servers: `pyinfra inventories/prod.py deploys/site.py`.

It runs onebox's own deploy file from the installed package, so upgrading onebox updates it.
"""

from onebox.kit import run_deploy_file

run_deploy_file("site")
