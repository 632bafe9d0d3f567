# Example production settings; they override onebox's defaults (onebox/defaults.py). Replace the values with yours.

# Your public key(s): the deploy user's only way in once passwords are off.
deploy_ssh_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExample you@laptop"]
# The names your API answers on; DNS A/AAAA records must point at the server.
domains = ["api.example.com"]
# Where Let's Encrypt sends expiry notices.
letsencrypt_email = "ops@example.com"
