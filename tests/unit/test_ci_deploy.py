"""CI deploys without root (issue 29, finding 9): the onebox-ci account's forced command and sudo
rule, the server's checks of CI's one input line, the deploy itself, and the admin's next converge
keeping CI's digest instead of undoing it."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from fake_docker import FakeDocker, make_app
from test_apps_settings import two_apps
from test_settings import KEY, valid

from onebox import ci, contract
from onebox.deploys.app import registry_image
from onebox.rollout import release_spec
from onebox.server import ci_deploy, cli, engine
from onebox.server.basics import OneboxError, UsageError
from onebox.server.ci_deploy import Request
from onebox.server.model import App
from onebox.settings import SettingsError, validate_settings

REPOSITORY = "registry.example.com:5000/team/api"
TAG = f"{REPOSITORY}:main"
DIGEST = f"{REPOSITORY}@sha256:{'a' * 64}"
DIGEST2 = f"{REPOSITORY}@sha256:{'b' * 64}"
OTHER_KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 ci@runner"


# --- the line CI sends -----------------------------------------------------------------------

def test_a_line_names_the_app_and_the_reference_or_the_reference_alone() -> None:
    assert ci_deploy.parse_line(f"api {DIGEST}\n") == Request("api", DIGEST)
    assert ci_deploy.parse_line(f"{DIGEST}\n") == Request(None, DIGEST)
    assert ci_deploy.parse_line(f" {DIGEST}\n") == Request(None, DIGEST)  # printf '%s %s\n' "" "$digest"


@pytest.mark.parametrize(("line", "message"), [
    ("", "no input: expected one line 'APP_NAME REPOSITORY@sha256:<64 hex>' on stdin"),
    ("\n", "no input"),
    (f"api {DIGEST} extra\n", "the input line has 3 words"),
    (f"api;reboot {DIGEST}\n", "'api;reboot' is neither an app name nor an image reference"),
    (f"api $(id)@sha256:{'a' * 64}\n", "'$(id)@sha256:"),
    (f"API {DIGEST}\n", "'API' is neither"),
    (f"api\x1b[2J {DIGEST}\n", "'api\\x1b[2J' is neither"),  # shown escaped, never as a control sequence
])
def test_a_malformed_line_is_refused_naming_the_problem(line: str, message: str) -> None:
    with pytest.raises(UsageError) as refused:
        ci_deploy.parse_line(line)
    assert message in str(refused.value)
    assert refused.value.exit_code == 2


class Bounded(io.BytesIO):
    """A stream that refuses an unbounded read: a line without end must not fill the server's memory."""

    def readline(self, size: int | None = -1) -> bytes:
        assert size is not None and 0 < size <= ci_deploy.MAX_LINE + 1, size
        return super().readline(size)


def test_only_one_bounded_line_is_read() -> None:
    stream = Bounded(f"api {DIGEST}\nsecond line\n".encode())
    assert ci_deploy.read_line(stream) == f"api {DIGEST}\n"
    with pytest.raises(UsageError, match="longer than 1000 bytes"):
        ci_deploy.read_line(Bounded(b"a" * 5000))
    with pytest.raises(UsageError, match="is neither an app name"):  # bytes that are no UTF-8
        ci_deploy.parse_line(ci_deploy.read_line(io.BytesIO(b"api\xff " + DIGEST.encode())))


# --- which app, which image --------------------------------------------------------------------

def apps_file(tmp_path: Path, **apps: contract.RegisteredApp) -> str:
    path = tmp_path / "apps.json"
    path.write_text(contract.apps_text(apps))
    return str(path)


def test_the_app_is_named_or_the_servers_only_one(tmp_path: Path) -> None:
    one = apps_file(tmp_path, onebox=contract.RegisteredApp("/opt/onebox", None),
                    old=contract.RegisteredApp("/opt/onebox-old", "old", removed=True))
    assert ci_deploy.app_dir_for(None, one) == Path("/opt/onebox")
    assert ci_deploy.app_dir_for("onebox", one) == Path("/opt/onebox")
    with pytest.raises(UsageError, match="no app 'web' on this server \\(apps: onebox\\)"):
        ci_deploy.app_dir_for("web", one)
    with pytest.raises(UsageError, match="app 'old' was taken off this server"):
        ci_deploy.app_dir_for("old", one)
    two = apps_file(tmp_path, api=contract.RegisteredApp("/opt/onebox-api", "api"),
                    jobs=contract.RegisteredApp("/opt/onebox-jobs", "jobs"))
    with pytest.raises(UsageError, match="this server has 2 apps \\(api, jobs\\): name the app"):
        ci_deploy.app_dir_for(None, two)
    assert ci_deploy.app_dir_for("jobs", two) == Path("/opt/onebox-jobs")
    with pytest.raises(UsageError, match="0 apps \\(none yet\\)"):
        ci_deploy.app_dir_for(None, str(tmp_path / "absent.json"))


@pytest.mark.parametrize(("a", "b", "same"), [
    (TAG, DIGEST, True),
    (REPOSITORY, DIGEST, True),
    (f"{REPOSITORY}:v2@sha256:{'c' * 64}", DIGEST, True),
    ("registry.example.com:5001/team/api:main", DIGEST, False),  # the port is part of the registry
    ("registry.example.com/team/api:main", DIGEST, False),
    ("other.example.com:5000/team/api:main", DIGEST, False),
    ("registry.example.com:5000/team/api2:main", DIGEST, False),
    ("registry.example.com:5000/team/api/x:main", DIGEST, False),
    ("my-org/api:main", f"docker.io/my-org/api@sha256:{'a' * 64}", True),  # Docker Hub's two spellings
    ("redis:8", f"docker.io/library/redis@sha256:{'a' * 64}", True),
])
def test_repositories_compare_without_tag_or_digest_registry_included(a: str, b: str, same: bool) -> None:
    assert contract.same_repository(a, b) is same
    assert contract.same_repository(b, a) is same


def test_a_digest_is_sha256_and_64_hex_digits() -> None:
    assert contract.is_digest(DIGEST)
    assert not contract.is_digest(TAG)
    assert not contract.is_digest(f"{REPOSITORY}@sha256:{'a' * 63}")
    assert not contract.is_digest(f"{REPOSITORY}@sha256:{'A' * 64}")
    assert not contract.is_digest(f"{REPOSITORY}@sha512:{'a' * 64}")
    assert not contract.is_digest(f"{REPOSITORY}@x@sha256:{'a' * 64}")


def registry_settings(app_image: str = TAG, **overrides: object):  # noqa: ANN201 - a Settings
    return validate_settings(valid(app_image_source="registry", app_image=app_image,
                                   registry_server="registry.example.com:5000", app_health_timeout=2, **overrides))


def registry_app(tmp_path: Path, fake: FakeDocker, monkeypatch: pytest.MonkeyPatch, app_image: str = TAG) -> App:
    """An app as the converge leaves it for app_image (a registry image), its spec written the converge's way."""
    s = registry_settings(app_image)
    app = make_app(tmp_path, s, fake, monkeypatch)
    image, label = registry_image(s, None)
    (app.dir / "spec.json").write_text(release_spec(s, image, label).to_json())
    return app.reloaded()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    docker = FakeDocker()
    docker.registry.update({TAG: f"sha256:{'0' * 64}", DIGEST: f"sha256:{'a' * 64}", DIGEST2: f"sha256:{'b' * 64}"})
    return docker


def test_ci_may_deploy_only_a_digest_of_the_apps_own_repository(tmp_path, fake, monkeypatch) -> None:
    app = registry_app(tmp_path, fake, monkeypatch)
    ci_deploy.check_ref(app, DIGEST)
    with pytest.raises(UsageError, match=f"{TAG} is not a digest"):
        ci_deploy.check_ref(app, TAG)
    other = f"registry.example.com:5000/evil/api@sha256:{'a' * 64}"
    with pytest.raises(UsageError, match=f"{other} is of repository registry.example.com:5000/evil/api, but app "
                                         f"'onebox' runs images of {REPOSITORY}"):
        ci_deploy.check_ref(app, other)


def test_an_app_built_on_the_server_takes_no_ci_deploy(tmp_path, fake, monkeypatch) -> None:
    app = make_app(tmp_path, registry_settings(), fake, monkeypatch)  # make_app's spec: a build
    with pytest.raises(UsageError, match="app 'onebox' pulls no image from a registry \\(app_image_source is 'build'\\)"):
        ci_deploy.check_ref(app, DIGEST)


def test_the_request_is_checked_before_anything_changes(tmp_path, fake, monkeypatch) -> None:
    app = registry_app(tmp_path, fake, monkeypatch)
    registry = apps_file(tmp_path, onebox=contract.RegisteredApp(str(app.dir), None))
    spec = (app.dir / "spec.json").read_text()
    assert ci_deploy.request(io.BytesIO(f"onebox {DIGEST}\n".encode()), False, registry) == (app.dir, DIGEST)
    assert ci_deploy.request(io.BytesIO(f"{DIGEST}\n".encode()), False, registry) == (app.dir, DIGEST)
    for line, message in ((f"web {DIGEST}", "no app 'web'"), (f"onebox {TAG}", "is not a digest"),
                          (f"onebox other.example.com/team/api@sha256:{'a' * 64}", "is of repository")):
        with pytest.raises(UsageError, match=message):
            ci_deploy.request(io.BytesIO(line.encode()), False, registry)
    with pytest.raises(UsageError, match="takes the app from its input line, not --app or --app-dir"):
        ci_deploy.request(io.BytesIO(f"{DIGEST}\n".encode()), True, registry)
    assert (app.dir / "spec.json").read_text() == spec and not (app.dir / contract.CI_IMAGE_FILE).exists()
    assert fake.calls == []  # nothing ran


# --- the deploy, and the converge after it ------------------------------------------------------

def test_a_ci_deploy_releases_the_digest_and_the_next_converge_writes_the_same_spec(tmp_path, fake,
                                                                                   monkeypatch) -> None:
    app = registry_app(tmp_path, fake, monkeypatch)
    engine.apply(app)  # the admin's first converge: the tag
    ci_deploy.deploy(app, DIGEST, engine.apply, clock=lambda: 1765000000.5)
    live = app.record(app.load_state().live)
    assert live is not None and live.image == DIGEST and live.source == DIGEST
    assert json.loads((app.dir / contract.CI_IMAGE_FILE).read_text()) == {"ref": DIGEST, "at": 1765000000}
    # The admin's next converge, app_image still the tag: it writes this very spec, so nothing re-releases.
    s = registry_settings(TAG)
    ci_ref = ci.recorded_ref((app.dir / contract.CI_IMAGE_FILE).read_text().splitlines())
    image, label = registry_image(s, ci_ref)
    assert (app.dir / "spec.json").read_text() == release_spec(s, image, label).to_json()
    assert app.reloaded().app_inputs == live.inputs


def test_a_failed_ci_deploy_puts_the_spec_of_what_runs_back_and_records_nothing(tmp_path, fake, monkeypatch) -> None:
    app = registry_app(tmp_path, fake, monkeypatch)
    engine.apply(app)
    spec, live = (app.dir / "spec.json").read_text(), app.load_state().live
    fake.fail = lambda argv: argv[:2] == ["docker", "pull"] and argv[-1] == DIGEST2  # e.g. not pushed after all
    with pytest.raises(OneboxError, match=f"docker pull {DIGEST2} failed"):
        ci_deploy.deploy(app, DIGEST2, engine.apply)
    assert app.load_state().live == live
    assert (app.dir / "spec.json").read_text() == spec
    assert not (app.dir / contract.CI_IMAGE_FILE).exists()


def test_the_deploy_checks_the_spec_again_under_the_lock(tmp_path, fake, monkeypatch) -> None:
    app = registry_app(tmp_path, fake, monkeypatch, app_image="registry.example.com:5000/team/other:main")
    spec = (app.dir / "spec.json").read_text()
    with pytest.raises(UsageError, match="is of repository"):
        ci_deploy.deploy(app, DIGEST, engine.apply)
    assert (app.dir / "spec.json").read_text() == spec and fake.calls == []


@pytest.mark.parametrize(("app_image", "ci_ref", "runs"), [
    (TAG, DIGEST, DIGEST),  # a tag of CI's repository: CI's digest stays
    (REPOSITORY, DIGEST, DIGEST),
    (TAG, None, TAG),  # CI deployed nothing
    (DIGEST2, DIGEST, DIGEST2),  # the admin chose bytes: the admin's win
    ("registry.example.com:5000/team/other:main", DIGEST, "registry.example.com:5000/team/other:main"),
])
def test_the_converge_keeps_cis_digest_only_over_a_tag_of_its_repository(app_image: str, ci_ref: str | None,
                                                                        runs: str) -> None:
    assert ci.image_to_run(app_image, ci_ref) == runs
    image, label = registry_image(registry_settings(app_image), ci_ref)
    assert image["ref"] == label == runs


@pytest.mark.parametrize(("lines", "ref"), [
    ([json.dumps({"ref": DIGEST, "at": 1})], DIGEST),
    (json.dumps({"ref": DIGEST, "at": 1}, indent=2).splitlines(), DIGEST),
    (None, None),  # absent
    ([], None),
    (["{not json"], None),
    ([json.dumps({"ref": TAG})], None),  # never a tag
    ([json.dumps([DIGEST])], None),
])
def test_the_record_of_a_ci_deploy_is_read_strictly(lines: list[str] | None, ref: str | None) -> None:
    assert ci.recorded_ref(lines) == ref


# --- the account: forced command and sudo rule --------------------------------------------------

def test_each_key_is_restricted_and_forced_to_run_the_one_command_sudo_allows() -> None:
    text = ci.authorized_keys([KEY, OTHER_KEY])
    assert text.splitlines() == [
        f'restrict,command="sudo -n /usr/local/sbin/onebox-release ci-deploy" {KEY}',
        f'restrict,command="sudo -n /usr/local/sbin/onebox-release ci-deploy" {OTHER_KEY}',
    ]
    assert ci.authorized_keys([]) == ""
    rule = ci.sudoers_rule()
    assert rule == "onebox-ci ALL=(root) NOPASSWD: /usr/local/sbin/onebox-release ci-deploy\n"
    # sudo matches the arguments exactly: the forced command is the rule's command, word for word.
    assert ci.CI_FORCED_COMMAND.removeprefix("sudo -n ") == rule.split("NOPASSWD: ", 1)[1].strip()


def test_the_server_tool_takes_the_forced_command_and_nothing_on_its_command_line(monkeypatch, capsys) -> None:
    started = []
    monkeypatch.setattr(cli, "relay_detached", lambda app_dir, argv: started.append((app_dir, argv)) or 0)

    def run(stdin: bytes, *argv: str) -> int:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        return cli.main([*argv, contract.CI_DEPLOY_COMMAND])

    assert run(b"") == 2  # `ssh onebox-ci@server id`: the forced command runs, with nothing on stdin
    assert "onebox: no input: expected one line 'APP_NAME REPOSITORY@sha256:<64 hex>'" in capsys.readouterr().err
    assert run(f"{DIGEST}\n".encode(), "--app", "onebox") == 2
    assert "not --app or --app-dir" in capsys.readouterr().err
    assert started == []
    # The detached half gets the checked reference as its one argument.
    args = cli.parser().parse_args(["--app-dir", "/opt/onebox", "_ci_deploy", DIGEST])
    assert (args.command, args.ref) == ("_ci_deploy", DIGEST)


def test_the_server_tool_relays_a_checked_deploy(tmp_path, fake, monkeypatch) -> None:
    app = registry_app(tmp_path, fake, monkeypatch)
    started = []
    monkeypatch.setattr(cli, "relay_detached", lambda app_dir, argv: started.append((app_dir, argv)) or 0)
    monkeypatch.setattr(ci_deploy, "registered_apps", lambda registry: {
        "onebox": contract.RegisteredApp(str(app.dir), None)})
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(f"onebox {DIGEST}\n".encode())))
    assert cli.main([contract.CI_DEPLOY_COMMAND]) == 0
    assert started == [(app.dir, ["_ci_deploy", DIGEST])]


# --- the setting -------------------------------------------------------------------------------

def test_ci_keys_are_empty_by_default_and_checked_like_the_deploy_users() -> None:
    assert validate_settings(valid()).ci_ssh_keys == []
    assert validate_settings(valid(ci_ssh_keys=[f"  {OTHER_KEY}  "])).ci_ssh_keys == [OTHER_KEY]
    for bad in ("my key", f'command="/bin/sh" {KEY}', f"{KEY}\n{OTHER_KEY}", f"no-pty {KEY}"):
        with pytest.raises(SettingsError, match="ci_ssh_keys: .*not an OpenSSH public key"):
            validate_settings(valid(ci_ssh_keys=[KEY, bad]))


def test_ci_keys_are_a_server_setting_and_the_ci_account_is_no_deploy_user() -> None:
    with pytest.raises(SettingsError, match="apps.jobs.ci_ssh_keys: not a setting an app can have"):
        validate_settings(two_apps(ci_ssh_keys=[KEY]))
    for name in ("ci", "onebox-ci"):
        with pytest.raises(SettingsError, match=f"deploy_user: .*'{name}' is taken by CI's account onebox-ci"):
            validate_settings(valid(deploy_user=name))
