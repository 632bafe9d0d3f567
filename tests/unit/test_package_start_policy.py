"""Package installs start no service with the package's defaults (issue 29, finding 10): during
each of onebox's installs, /usr/sbin/policy-rc.d denies the first start of a service that apt run
brings; onebox's systemd.service operations start it once it is configured. The policy denies
nothing to any other apt run, so one an interrupted install left behind blocks nothing."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

import onebox.operations
from onebox.facts import POLICY_RC_D, StartPolicy
from onebox.operations import HOLD_NEW_SERVICES, install_packages
from onebox.render import render

ROOT = Path(__file__).resolve().parents[2]
DEPLOYS = ROOT / "onebox" / "deploys"


def policy(tmp_path: Path, *args: str, held: bool, active: bool = False) -> int:
    """Exit status of the policy as invoke-rc.d and deb-systemd-invoke call it (systemctl a stub)."""
    script, systemctl = tmp_path / "policy-rc.d", tmp_path / "bin" / "systemctl"
    script.write_text(render("apt/policy-rc.d.j2"))
    systemctl.parent.mkdir(exist_ok=True)
    systemctl.write_text(f"#!/bin/sh\n[ \"$1 $2 $3\" = 'is-active --quiet {args[-2]}' ] && exit {0 if active else 3}\n"
                         "exit 1\n")
    systemctl.chmod(0o755)
    env = {"PATH": f"{systemctl.parent}:/usr/bin:/bin", **(HOLD_NEW_SERVICES if held else {})}
    return subprocess.run(["sh", str(script), *args], env=env, check=False).returncode


@pytest.mark.parametrize("args", [("prometheus.service", "start"), ("--quiet", "nginx", "start"),
                                  ("--quiet", "nginx", "(start)", "2")])
def test_a_new_service_does_not_start_during_onebox_s_installs(tmp_path: Path, args: tuple[str, ...]) -> None:
    assert policy(tmp_path, *args, held=True) == 101


def test_a_package_installed_again_over_its_old_configuration_does_not_restart_into_it(tmp_path: Path) -> None:
    assert policy(tmp_path, "fail2ban.service", "restart", held=True) == 101
    assert policy(tmp_path, "fail2ban.service", "restart", held=True, active=True) == 0  # an upgrade's restart


@pytest.mark.parametrize("action", ["stop", "reload", "force-reload", "try-restart", "status"])
def test_everything_else_runs_during_onebox_s_installs(tmp_path: Path, action: str) -> None:
    assert policy(tmp_path, "nginx.service", action, held=True) == 0


@pytest.mark.parametrize("action", ["start", "restart", "stop"])
def test_any_other_apt_run_is_never_held_even_when_a_failed_converge_left_the_file(tmp_path: Path, action: str) -> None:
    assert policy(tmp_path, "nginx.service", action, held=False) == 0


def test_the_fact_tells_onebox_s_policy_from_anyone_else_s(tmp_path: Path) -> None:
    path = tmp_path / "policy-rc.d"

    def state() -> str:
        command = StartPolicy().command().replace(POLICY_RC_D, str(path))
        return StartPolicy().process(subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                                                    check=True).stdout.splitlines())

    assert state() == "absent"
    path.write_text(render("apt/policy-rc.d.j2"))
    assert state() == "onebox"
    path.write_text("#!/bin/sh\n# For most Docker users, ...\nexit 101\n")
    assert state() == "other"
    path.unlink()
    path.symlink_to(tmp_path / "elsewhere")  # a dangling link (an alternatives entry, say) is someone's too
    assert state() == "other"


def test_the_policy_holds_the_install_s_services_and_goes_whatever_apt_did(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # install_packages' last command, its policy at a temp path, apt-get a stub that asks the
    # policy as a package's postinst does (deb-systemd-invoke) and then fails.
    apt_get = tmp_path / "bin" / "apt-get"
    apt_get.parent.mkdir()
    apt_get.write_text(f"#!/bin/sh\n{tmp_path}/policy-rc.d prometheus.service start; echo $? > {tmp_path}/asked\n"
                       "exit 100\n")
    apt_get.chmod(0o755)
    (tmp_path / "policy-rc.d").write_text(render("apt/policy-rc.d.j2"))
    (tmp_path / "policy-rc.d").chmod(0o755)
    fake = SimpleNamespace(get_fact=lambda fact: "absent", noop=None, current_op_global_arguments={},
                           get_temp_filename=lambda key, temp_directory=None: "/tmp/x")
    monkeypatch.setattr(onebox.operations, "host", fake)
    monkeypatch.setattr(onebox.operations, "apt", SimpleNamespace(packages=SimpleNamespace(
        _inner=lambda packages, no_recommends: iter(["DEBIAN_FRONTEND=noninteractive apt-get -y install prometheus"]))))
    last = list(install_packages._inner(packages=["prometheus"]))[-1]
    result = subprocess.run(["sh", "-c", last.replace(POLICY_RC_D, str(tmp_path / "policy-rc.d"))],
                            env={"PATH": f"{apt_get.parent}:/usr/bin:/bin"}, check=False)
    assert (tmp_path / "asked").read_text() == "101\n"  # Prometheus did not start on 0.0.0.0:9090
    assert result.returncode == 100 and not (tmp_path / "policy-rc.d").exists()


def test_every_package_onebox_installs_is_held_until_configured() -> None:
    for path in sorted(DEPLOYS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "apt.packages":
                keywords = {keyword.arg: ast.unparse(keyword.value) for keyword in node.keywords}
                assert keywords.get("present") == "False", (
                    f"{path.name}:{node.lineno}: install with onebox.operations.install_packages, which holds "
                    "the package's services until onebox has configured them")


def test_a_converge_first_removes_a_policy_an_interrupted_install_left() -> None:
    tree = ast.parse((DEPLOYS / "site.py").read_text())
    order = [ast.unparse(node.value.func) for node in tree.body
             if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)]
    assert order.index("remove_start_policy") < order.index("prepare_host")  # the first role, and apt's first install
