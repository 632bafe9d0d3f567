# Settings of the Vagrant VM (inventories/vagrant.py); they override onebox's defaults (onebox/defaults.py).
# The VM reaches registries, so it keeps the official images.
from testbed import target as _target

# The key onebox generated on this machine (python -m testbed.target up, or make target).
deploy_ssh_keys = [_target.public_key()]
# A private VM has no public name: certificate issuance fails there unless you point a real one at it.
domains = ["onebox.test"]
# Contact address for the ACME account.
letsencrypt_email = "admin@onebox.test"
# Staging: repeated tries from a VM must not spend Let's Encrypt's production rate limits.
acme_server = "letsencrypt-staging"
