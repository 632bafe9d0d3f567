"""A fake Docker (and nginx, systemctl, pgrep) for the release engine's unit tests: it
records every argv the engine runs and keeps just enough state to answer like the real
one: containers per compose project, images, and an exit status per command."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

from onebox import contract, pitr
from onebox.rollout import release_spec
from onebox.server import basics, slot_project
from onebox.server.basics import Result
from onebox.server.model import App

REAL_RUN = basics.run  # before any test replaces it with a FakeDocker


class Crash(BaseException):
    """The tool killed at this command (a reboot, SIGKILL): nothing after it runs."""


class FakeDocker:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.projects: dict[str, dict[str, dict]] = {}  # project -> service -> {"state", "id", "image"}
        self.images: set[str] = set()
        self.volumes: dict[str, str] = {}  # volume name -> mountpoint
        self.registry: dict[str, str] = {}  # tag -> digest, what `docker pull` finds
        self.images_by_id: dict[str, str] = {}  # ref -> image ID, where two refs name one image
        self.digests: dict[str, list[str]] = {}  # ref -> RepoDigests (pulled images)
        self.fail: Callable[[list[str]], bool] = lambda argv: False  # exit 1 when true
        self.crash: Callable[[list[str]], bool] = lambda argv: False  # raise Crash when true
        self.hang: Callable[[list[str]], bool] = lambda argv: False  # a real `sleep` under the command's timeout
        self.unhealthy: set[str] = set()  # projects whose api never answers
        self.nft: dict[str, str] = {}  # nft table -> the rules file that made it (the kernel's port map)
        self._ids = itertools.count(1)

    # --- what tests read ---
    def commands(self, *words: str) -> list[list[str]]:
        """The recorded argvs that contain every word."""
        return [argv for argv in self.calls if all(word in argv for word in words)]

    def services(self, project: str) -> dict[str, str]:
        return {name: item["state"] for name, item in self.projects.get(project, {}).items()}

    def ids(self, project: str) -> dict[str, str]:
        return {name: item["id"] for name, item in self.projects.get(project, {}).items()}

    # --- the fake ---
    def __call__(self, argv: list[str], **kwargs) -> Result:
        self.calls.append(list(argv))
        if self.crash(argv):
            raise Crash(" ".join(argv))
        if self.hang(argv):
            if kwargs.get("timeout") is None:
                raise AssertionError(f"{' '.join(argv[:4])} may hang and was given no timeout")
            return REAL_RUN(["sleep", "60"], timeout=kwargs["timeout"], what=kwargs.get("what"))
        failed = self.fail(argv)
        result = Result(argv, 1, "", "failed (fake)") if failed else self._answer(argv, kwargs.get("env") or {})
        if kwargs.get("check", True) and not result.ok:
            raise basics.OneboxError(f"{kwargs.get('what') or ' '.join(argv[:4])} failed (exit 1)")
        return result

    def _answer(self, argv: list[str], env: dict[str, str]) -> Result:
        ok = Result(argv, 0, "", "")
        if argv[:2] == ["docker", "compose"]:
            return self._compose(argv, env)
        if argv[:2] == ["docker", "ps"]:
            project = argv[argv.index("--filter") + 1].rsplit("=", 1)[1]
            lines = [json.dumps({"Labels": f"com.docker.compose.project={project},com.docker.compose.service={name}",
                                 "State": item["state"], "Status": "Up (healthy)" if item["state"] == "running" else "Exited",
                                 "Names": f"{project}-{name}-1", "ID": item["id"]})
                     for name, item in self.projects.get(project, {}).items()]
            return Result(argv, 0, "\n".join(lines), "")
        if argv[:3] == ["docker", "image", "inspect"]:
            ref = argv[-1]
            if ref not in self.images:
                return Result(argv, 1, "", "No such image")
            config = {"Env": ["PG_MAJOR=17"] if ref.startswith("postgres") else [], "Cmd": ["serve"]}
            answers = {"{{json .Config}}": json.dumps(config), "{{.Id}}": self.images_by_id.get(ref, f"sha256:{ref}"),
                       "{{json .RepoDigests}}": json.dumps(self.digests.get(ref, []))}
            return Result(argv, 0, answers[argv[argv.index("-f") + 1]], "")
        if argv[:2] == ["docker", "build"]:
            self.images.add(argv[argv.index("-t") + 1])
            return ok
        if argv[:2] == ["docker", "images"]:
            return Result(argv, 0, "\n".join(sorted(i for i in self.images if i.startswith(argv[-1] + ":"))), "")
        if argv[:3] == ["docker", "image", "rm"]:
            self.images.discard(argv[-1])
            return ok
        if argv[:3] == ["docker", "volume", "inspect"]:
            name = argv[-1]
            return Result(argv, 0, self.volumes[name], "") if name in self.volumes else Result(argv, 1, "", "no such volume")
        if argv[:2] == ["docker", "pull"]:
            return self.pull(argv[-1], argv)
        if argv[0] == "nft":
            return self._nft(argv)
        return ok  # network inspect/create, nginx -t, systemctl reload, pgrep, login

    def _nft(self, argv: list[str]) -> Result:
        if argv[1] == "-f":
            text = Path(argv[2]).read_text()
            self.nft[text.split("table ip ", 1)[1].split()[0]] = text
            return Result(argv, 0, "", "")
        table = argv[-1]
        if table not in self.nft:
            return Result(argv, 1, "", f"Error: No such file or directory; did you mean table ‘{table}’?")
        if argv[1] == "delete":
            del self.nft[table]
            return Result(argv, 0, "", "")
        return Result(argv, 0, self.nft[table], "")

    def pull(self, ref: str, argv: list[str]) -> Result:
        """What the registry holds (tests fill `registry`: tag -> digest); the pulled tag gets that digest."""
        digest = self.registry.get(ref)
        if digest is None:
            return Result(argv, 1, "", f"manifest for {ref} not found")
        repository = ref.rsplit(":", 1)[0]
        for name in (ref, f"{repository}@{digest}"):
            self.images.add(name)
            self.images_by_id[name] = f"sha256:image-{digest}"
        self.digests[ref] = [f"{repository}@{digest}"]
        return Result(argv, 0, "", "")

    def _compose(self, argv: list[str], env: dict[str, str]) -> Result:
        project = argv[argv.index("-p") + 1]
        files = [Path(argv[i + 1]) for i, word in enumerate(argv) if word == "-f"]
        verb_at = max(i for i, word in enumerate(argv) if word in ("up", "down", "stop", "run", "logs"))
        verb, rest = argv[verb_at], argv[verb_at + 1:]
        services = self.projects.setdefault(project, {})
        if verb == "up":
            named = [word for word in rest if not word.startswith("-") and not word.isdigit() and word != "never"]
            declared = declared_services(files)
            wanted = named or declared
            if "--remove-orphans" in rest:
                for name in list(services):
                    if name not in declared:
                        del services[name]
            for name in wanted:
                current = services.get(name)
                image = env.get("APP_IMAGE", name)
                if current and ("--no-recreate" in rest or current["image"] == image):
                    current["state"] = "running"
                else:
                    services[name] = {"state": "running", "id": f"c{next(self._ids)}", "image": image}
        elif verb == "down":
            services.clear()
        elif verb == "stop":
            for item in services.values():
                item["state"] = "exited"
        return Result(argv, 0, "", "")


def declared_services(files: list[Path]) -> list[str]:
    """The services a compose file declares: its top-level `services:` keys (2-space indent)."""
    names = []
    for path in files[:1]:
        inside = False
        for line in path.read_text().splitlines():
            if line.startswith("services:"):
                inside = line.strip() == "services:"
                continue
            if inside and line.startswith("  ") and not line.startswith("   ") and line.strip().endswith(":"):
                names.append(line.strip()[:-1])
            elif inside and line and not line.startswith(" "):
                inside = False
    return names


def make_app(tmp_path: Path, settings, fake: FakeDocker, monkeypatch, tag: str = "v1") -> App:  # noqa: ANN001
    """An app directory as the controller writes it, for `settings`, on the fake Docker."""
    from onebox.nginx import initial_upstream
    from onebox.render import render

    app_dir = tmp_path / "app"
    for sub in ("secrets", "releases", "incoming"):
        (app_dir / sub).mkdir(parents=True, exist_ok=True)
    (app_dir / "incoming" / "src-1.tar.gz").write_bytes(b"context")
    image = {"source": "build", "ref": f"onebox/api:{tag}", "tarball": "src-1.tar.gz", "dockerfile": "Dockerfile",
             "target": None, "args": {}}
    spec = release_spec(settings, image, f"app@{tag}")
    (app_dir / "spec.json").write_text(spec.to_json())
    (app_dir / "app.compose.yaml").write_text(render("app/app.compose.yaml.j2", s=settings))
    (app_dir / "deps.compose.yaml").write_text(pitr.deps_compose(settings))
    nginx_dir = tmp_path / "nginx"
    nginx_dir.mkdir(exist_ok=True)
    upstream = Path(contract.upstream_path(str(nginx_dir), settings.files.key))
    if not upstream.exists():  # as the proxy role writes it on a fresh server
        upstream.write_text(initial_upstream(settings))
    monkeypatch.setattr(basics, "run", fake)
    monkeypatch.setattr(slot_project, "http_ok", lambda app, port, timeout=2.0: fake_http_ok(fake, app, port))
    monkeypatch.setattr("onebox.server.switch.shutil.which", lambda name: f"/usr/sbin/{name}")
    conntrack = tmp_path / "nf_conntrack"  # the kernel's connections: none, so a drain ends at once
    conntrack.touch()
    monkeypatch.setattr("onebox.server.port_map.CONNTRACK", conntrack)
    return App(app_dir, nginx_dir=str(nginx_dir), maintenance_dir=str(tmp_path / "maintenance"))


def fake_http_ok(fake: FakeDocker, app: App, port: int) -> bool:
    slot = "blue" if port == app.spec.slot_ports[0] else "green"
    project = app.project(slot)
    return fake.services(project).get("api") == "running" and project not in fake.unhealthy
