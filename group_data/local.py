# Settings of the local VPS-like target (inventories/local.py); they override all.py.
# Images come from this machine: no registry is reachable here (see tests/images/).
from onebox.local import target as _target

# The key onebox generated for the local target.
deploy_ssh_keys = [_target.ensure_ssh_key()]
# The local target answers for this name through Pebble's test DNS.
domains = ["app.onebox.test"]
# Contact address for the local ACME account.
letsencrypt_email = "admin@onebox.test"
