# The local targets as one swarm (inventories/local_cluster.py), layered on group_data/local.py:
# ONEBOX_EXTRA_GROUPS=local_cluster. Docker refuses swarm mode with live-restore on.
import os as _os

docker_live_restore = False

# The apps of the other e2e modules keep their API on the manager (they build it there) ...
api_placement = "manager"
# ... unless the test moves it onto the workers: built on this machine, loaded onto every node.
if _os.environ.get("ONEBOX_TEST_API_ON_WORKERS"):
    api_placement = "workers"
    app_image_source = "tarball"
