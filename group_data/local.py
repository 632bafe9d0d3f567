# Settings of the local VPS-like target (inventories/local.py); they override onebox's defaults (onebox/defaults.py).
from testbed import pebble as _pebble
from testbed import target as _target

# The key onebox generated for the local target.
deploy_ssh_keys = [_target.public_key()]
# The local target answers for this name through Pebble's test DNS.
domains = ["app.onebox.test"]
# Contact address for the local ACME account.
letsencrypt_email = "admin@onebox.test"

# Certificates come from Pebble on this machine (testbed/pebble.py), a real ACME server.
acme_server = "custom"
# Pebble's directory, reached from the target through the bridge gateway.
acme_directory_url = _pebble.DIRECTORY_URL
# Pebble's self-signed listener certificate (created by `python -m testbed.pebble up TARGET_IP`).
acme_ca_bundle = str(_pebble.LISTENER_CA)

# No registry is reachable here: stand-ins built from Debian packages (tests/images/, test-only)
# replace the official images, which stay the production defaults in onebox/defaults.py.
app_build_args = {"PYTHON_IMAGE": "onebox-test/python:3.13"}
# PostgreSQL stand-in (built here).
postgres_image = "onebox-test/postgres:17"
# Redis stand-in (built here).
redis_image = "onebox-test/redis:8"
# The stand-ins reach the target's engine from this machine.
controller_images = ["onebox-test/python:3.13", "onebox-test/postgres:17", "onebox-test/redis:8"]
# The target has no cgroup CPU controller: the engine refuses CPU limits there.
api_cpus = None
# This machine (the bridge gateway) runs the tests, which log in as root while root login is off: never ban it.
fail2ban_ignore_ips = [_target.GATEWAY_IP]

# Monitoring on a short clock, so the e2e tests see alerts fire and clear within a minute or two.
monitoring_scrape_interval = 5
alert_for_seconds = 10
alert_rate_window_seconds = 30
alert_group_wait_seconds = 5
alert_group_interval_seconds = 10
# The target does not trust Pebble's root: the probe reads the certificate without verifying it.
monitoring_probe_verify_tls = False
# The e2e tests' receivers on this machine (tests/e2e/receivers.py): a webhook and an SMTP server.
alert_webhook_url = f"http://{_target.GATEWAY_IP}:9877/alerts"
alert_email_to = ["ops@onebox.test"]
alert_email_from = "onebox@onebox.test"
alert_smtp_host = _target.GATEWAY_IP
alert_smtp_port = 2525
alert_smtp_require_tls = False
