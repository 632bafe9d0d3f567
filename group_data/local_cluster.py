# The local targets as one swarm (inventories/local_cluster.py), layered on group_data/local.py:
# ONEBOX_EXTRA_GROUPS=local_cluster. Docker refuses swarm mode with live-restore on.
docker_live_restore = False
