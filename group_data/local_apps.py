# Two apps on the local target (several apps on one server), layered on group_data/local.py:
# ONEBOX_EXTRA_GROUPS=local_apps. The app of the other e2e modules (examples/app) keeps its name
# and directory, so its data stays; examples/jobs joins it with the contract of group_data/local_jobs.py.
import os as _os
from pathlib import Path as _Path

from onebox.inventory import read_group_file as _read

_GROUP_DATA = _Path(__file__).resolve().parent

_jobs = {
    **_read(_GROUP_DATA / "local_jobs.py"),
    # Its own domain, slots and network: what two apps of one server may not share.
    "domains": ["jobs.onebox.test"], "api_port": 8010, "docker_network_subnet": "172.30.1.0/24",
}
# Test hook: a code release of jobs alone (a new value in its environment).
if _os.environ.get("ONEBOX_TEST_JOBS_RELEASE"):
    _jobs["app_env"] = {**_jobs["app_env"], "RELEASE_MARK": _os.environ["ONEBOX_TEST_JOBS_RELEASE"]}

# The apps of this server; the first is the single app of group_data/local.py, moved into apps.
apps = {"onebox": {"app_dir": "/opt/onebox"}, "jobs": _jobs}
# Test hooks: jobs left out of the settings (refused), then taken off the server (apps_removed).
if _os.environ.get("ONEBOX_TEST_JOBS") in ("forgotten", "removed"):
    del apps["jobs"]
if _os.environ.get("ONEBOX_TEST_JOBS") == "removed":
    apps_removed = ["jobs"]
