"""Monitoring: Prometheus, the node, blackbox, PostgreSQL, Redis and nginx exporters and
Alertmanager from the distribution, every one on 127.0.0.1; onebox's facts through the node exporter's textfile
collector (onebox-release metrics, on a timer); alert rules from the settings; alerts to a
webhook and/or e-mail. `monitoring_enabled = False` removes all of it."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from onebox import contract, server_calls
from onebox.cluster import Node, api_nodes
from onebox.consoles import config_script
from onebox.hosts import cluster_nodes, ran_before_this_run
from onebox.operations import checked_file, install_packages
from onebox.render import render
from onebox.settings import Settings

# Configured by their /etc/default file alone (the apps' PostgreSQL and Redis come by file discovery).
PLAIN_EXPORTERS = ["prometheus-postgres-exporter", "prometheus-redis-exporter", "prometheus-nginx-exporter"]
PACKAGES = ["prometheus", "prometheus-node-exporter", "prometheus-alertmanager", "prometheus-blackbox-exporter",
            *PLAIN_EXPORTERS]
PROMETHEUS_DIR = "/etc/prometheus"
RULES = f"{PROMETHEUS_DIR}/onebox.rules.yml"
CONSOLE = f"{PROMETHEUS_DIR}/consoles/onebox.html"  # current values
# The graphs (onebox/consoles.py): one template, a page for the server and one for any app (?app=NAME).
GRAPH_PAGES = {"server": f"{PROMETHEUS_DIR}/consoles/onebox-server.html", "app": f"{PROMETHEUS_DIR}/consoles/onebox-app.html"}
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
TEXTFILE = f"{TEXTFILE_DIR}/onebox.prom"
UNIT_DIR = "/etc/systemd/system"
MEMORY_DROP_IN = f"{UNIT_DIR}/prometheus.service.d/onebox-memory.conf"
COLLECTOR = "onebox-metrics"
# Go's garbage collector for every one of them (default/go-runtime.j2): half the default heap growth
# costs a little CPU per scrape (measured by bench/footprint.py and bench/monitoring.py) and saves memory.
GO_GC_PERCENT = 50
# Soft heap limits in MiB, well above what each uses idle with a few apps (bench/footprint.py).
GO_MEMORY_LIMIT_MIB = {"prometheus-alertmanager": 48}
EXPORTER_GO_MEMORY_LIMIT_MIB = 32
MEMORY_MAX_UNITS_MIB = {"K": 1 / 1024, "M": 1, "G": 1024}


def go_runtime(s: Settings, service: str) -> dict[str, object]:
    """GOGC and GOMEMLIMIT for a service. Prometheus's limit is three quarters of its systemd
    MemoryMax (monitoring_memory_max): its collector works hard before systemd would kill it."""
    if service == "prometheus":
        memory_max = s.monitoring_memory_max
        limit = int(int(memory_max[:-1]) * MEMORY_MAX_UNITS_MIB[memory_max[-1]] * 3 / 4)
    else:
        limit = GO_MEMORY_LIMIT_MIB.get(service, EXPORTER_GO_MEMORY_LIMIT_MIB)
    return {"gc_percent": GO_GC_PERCENT, "memory_limit": f"{limit}MiB"}


def monitoring_config(s: Settings) -> str:
    """contract.MONITORING_FILE: what `onebox-release status` needs to report alerts."""
    return contract.monitoring_config_text(contract.MonitoringConfig(routes=s.alert_routes))


@deploy("Monitor the server and its apps")
def configure_monitoring(s: Settings) -> None:
    if s.monitoring_enabled:
        install_monitoring(s)
    else:
        remove_monitoring()


def app_nodes(s: Settings, nodes: list[Node]) -> dict[str, list[Node]]:
    """Per app, the swarm nodes its API replicas run on: Prometheus scrapes each (label node). An
    app on this server (a single server, or api_placement = "manager") has none."""
    by_address = {node.address: node for node in nodes}
    return {app.app_name: [by_address[address] for address in api_nodes(app, nodes)] for app in s.app_list}


def install_monitoring(s: Settings) -> None:
    on_nodes = app_nodes(s, cluster_nodes())
    # Held until configured (operations.install_packages): Prometheus would listen on 0.0.0.0:9090 at first.
    install_packages(name="Install Prometheus, its exporters and Alertmanager from the distribution.",
                     packages=PACKAGES, no_recommends=True)
    defaults = {service: files.put(name=f"Bind {service} to 127.0.0.1, tune its memory (/etc/default/{service}).",
                                   src=StringIO(render(f"default/{service}.j2", s=s, go=go_runtime(s, service),
                                                       textfile_dir=TEXTFILE_DIR,
                                                       config=contract.POSTGRES_EXPORTER_CONFIG,
                                                       nginx_status=contract.NGINX_STATUS)),
                                   dest=f"/etc/default/{service}")
                for service in PACKAGES}
    memory = files.put(name="Limit Prometheus's memory (monitoring_memory_max).", create_remote_dir=True,
                       src=StringIO(render("systemd/prometheus-memory.conf.j2", s=s)), dest=MEMORY_DROP_IN)
    rules = checked_file(name="Write the alert rules (checked by promtool).", dest=RULES,
                         content=render("prometheus/onebox.rules.yml.j2", s=s), check=f"promtool check rules {RULES} >/dev/null")
    console = files.put(name="Write onebox's console page (onebox dashboard).", dest=CONSOLE,
                        src=StringIO(render("prometheus/consoles/onebox.html.j2", s=s)))
    graphs = config_script(s, on_nodes)
    for page, dest in GRAPH_PAGES.items():
        # Prometheus reads a console page at each request: a new one needs no reload.
        files.put(name=f"Write onebox's graphs of the {page} (onebox dashboard).", dest=dest,
                  src=StringIO(render("prometheus/consoles/graphs.html.j2", s=s, page=page, config=graphs)))
    config = checked_file(name="Write prometheus.yml (checked by promtool).", dest=f"{PROMETHEUS_DIR}/prometheus.yml",
                          content=render("prometheus/prometheus.yml.j2", s=s, rules=RULES, app_nodes=on_nodes,
                                         targets_dir=contract.EXPORTER_TARGETS_DIR),
                          check=f"promtool check config {PROMETHEUS_DIR}/prometheus.yml >/dev/null")
    blackbox = checked_file(name="Write the public URL probes (blackbox.yml).", dest=f"{PROMETHEUS_DIR}/blackbox.yml",
                            content=render("prometheus/blackbox.yml.j2", s=s),
                            check=f"prometheus-blackbox-exporter --config.check --config.file {PROMETHEUS_DIR}/blackbox.yml")
    # The SMTP password and the webhook URL (its token) are in the file (root and Alertmanager only;
    # uploaded, never diffed or printed).
    password = s.alert_smtp_password.get_secret_value() if s.alert_smtp_password else ""
    webhook_url = s.alert_webhook_url.get_secret_value() if s.alert_webhook_url else ""
    routes = checked_file(name="Write alertmanager.yml (checked by amtool; root and Alertmanager only).",
                          dest=f"{PROMETHEUS_DIR}/alertmanager.yml", mode="640", group="prometheus",
                          content=render("prometheus/alertmanager.yml.j2", s=s, smtp_password=password,
                                         webhook_url=webhook_url),
                          check=f"amtool check-config {PROMETHEUS_DIR}/alertmanager.yml >/dev/null")
    files.put(name="Tell onebox-release where alerts go (onebox status).", src=StringIO(monitoring_config(s)),
              dest=contract.MONITORING_FILE)
    collector = install_collector(s)
    systemd.daemon_reload(name="Reload systemd for the monitoring units.", _if=any_changed(memory, *collector))
    # New arguments need a restart; new configuration a reload (SIGHUP), which keeps the scrape
    # loops: a target that leaves file discovery later still gets its staleness markers. After a
    # restart a removed app's series would linger for Prometheus's 5 min lookback.
    # Prometheus last: what it scrapes first is then the exporters with their new arguments, not
    # an exporter restarting (a fresh install would otherwise begin with up == 0).
    restart_on = {
        "prometheus-node-exporter": [defaults["prometheus-node-exporter"]],
        "prometheus-alertmanager": [defaults["prometheus-alertmanager"]],
        "prometheus-blackbox-exporter": [defaults["prometheus-blackbox-exporter"]],
        **{service: [defaults[service]] for service in PLAIN_EXPORTERS},
        "prometheus": [defaults["prometheus"], memory],
    }
    reload_on = {"prometheus": [rules, config, console], "prometheus-alertmanager": [routes],
                 "prometheus-blackbox-exporter": [blackbox]}
    for service, changes in restart_on.items():
        was_running = ran_before_this_run(service)
        systemd.service(name=f"Run {service} at boot.", service=service, running=True, enabled=True)
        restart = any_changed(*changes)
        systemd.service(name=f"Restart {service} for its new arguments.", service=service, restarted=True, _if=restart)
        if service in reload_on and was_running:  # one this run starts reads its new files as it starts
            systemd.service(name=f"Reload {service} for its new configuration.", service=service, reloaded=True,
                            _if=only_if(any_changed(*reload_on[service]), unless=restart))
    systemd.service(name=f"Run {COLLECTOR}.timer.", service=f"{COLLECTOR}.timer", running=True, enabled=True)


def only_if(changed: Callable[[], bool], unless: Callable[[], bool]) -> Callable[[], bool]:
    """A reload when its files changed, unless a restart (which reads them too) ran already."""
    return lambda: changed() and not unless()


def install_collector(s: Settings) -> list:
    files.directory(name="Create the textfile collector's directory.", path=TEXTFILE_DIR, mode="755")
    files.directory(name="Create the directory of the exporters' targets.", path=contract.EXPORTER_TARGETS_DIR,
                    mode="755")
    service = files.put(name=f"Write {COLLECTOR}.service.", dest=f"{UNIT_DIR}/{COLLECTOR}.service",
                        src=StringIO(render(f"systemd/{COLLECTOR}.service.j2", s=s, command=contract.RELEASE_COMMAND,
                                            textfile=TEXTFILE, targets_dir=contract.EXPORTER_TARGETS_DIR)))
    timer = files.put(name=f"Write {COLLECTOR}.timer.", dest=f"{UNIT_DIR}/{COLLECTOR}.timer",
                      src=StringIO(render(f"systemd/{COLLECTOR}.timer.j2", s=s)))
    return [service, timer]


def remove_monitoring() -> None:
    """monitoring_enabled = False: the packages, their data and onebox's files go."""
    if host.get_fact(File, path=f"{UNIT_DIR}/{COLLECTOR}.timer"):
        # The service too: a run under way would write the exporters' files again after they go.
        server.shell(name=f"Stop and disable {COLLECTOR}.timer.",
                     commands=[f"systemctl disable --now {COLLECTOR}.timer", f"systemctl stop {COLLECTOR}.service"])
    if host.get_fact(File, path=contract.POSTGRES_MONITOR_PASSWORD):
        server.shell(name="Drop the monitoring role from every app's PostgreSQL.",
                     commands=[server_calls.as_shell(server_calls.unmonitor())])
    removed = [files.file(name=f"Remove {path}.", path=path, present=False)
               for path in (f"{UNIT_DIR}/{COLLECTOR}.service", f"{UNIT_DIR}/{COLLECTOR}.timer", MEMORY_DROP_IN,
                            contract.MONITORING_FILE, contract.POSTGRES_EXPORTER_CONFIG,
                            contract.POSTGRES_MONITOR_PASSWORD, contract.MONITOR_ROLES_FILE)]
    systemd.daemon_reload(name="Reload systemd without the monitoring units.", _if=any_changed(*removed))
    apt.packages(name="Remove Prometheus, its exporters and Alertmanager.", packages=PACKAGES, present=False,
                 purge=True)
    for path in (PROMETHEUS_DIR, "/var/lib/prometheus"):
        files.directory(name=f"Remove {path} (samples, rules, onebox's pages).", path=path, present=False)
