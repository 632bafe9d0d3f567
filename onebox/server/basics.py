"""What every server tool needs, once: running a command, logging, atomic writes, a lock
with a deadline, and one error type whose exit code the CLI returns. Standard library only."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# The server tools' exit codes, named here for them (the contract holds them: `onebox` passes them on).
from onebox.contract.layout import EXIT_ATTENTION, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE  # noqa: F401


class OneboxError(RuntimeError):
    """A step failed; the message says what happened and what still serves."""

    exit_code = EXIT_FAILED


class UsageError(OneboxError):
    exit_code = EXIT_USAGE


class CommandTimeout(OneboxError):
    """A command ran past its `timeout` and was killed (see over_time)."""

    def __init__(self, what: str, timeout: float) -> None:
        super().__init__(f"{what} did not finish within {timeout:.0f} s")
        self.what = what


def over_time(what: str, setting: str, seconds: int, stopped: str = "it was stopped") -> OneboxError:
    """The error of a step stopped at its time limit, naming the setting that raises the limit."""
    return OneboxError(f"{what} did not finish within {seconds} s ({setting}): {stopped}, and the running version "
                       f"was left as it was. If it needs longer, raise {setting} (group data, or "
                       f"ONEBOX_{setting.upper()}) and deploy again")


# C0 (ESC, CR, LF, ...) but tab, DEL, and C1 (CSI, OSC, ... as single characters).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text from an app (its log lines, its containers' states, its messages) as it may reach the
    operator's terminal: each control character as a visible escape (\\x1b), so none can clear the
    screen, set the clipboard (OSC 52) or start a new line. A tab stays a tab."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match[0]):02x}", text)


_started = time.monotonic()
_prefix = "onebox"


def set_prefix(name: str) -> None:
    """The tool's name on each log line (onebox-release, onebox-backup)."""
    global _prefix
    _prefix = name


def log(message: str, timed: bool = False) -> None:
    """A line of the tool's log; `timed` adds the seconds since the command started (where time goes)."""
    when = f"[{time.monotonic() - _started:5.1f} s] " if timed else ""
    with contextlib.suppress(OSError):  # a gone SSH session must not fail a detached release
        print(f"{_prefix}: {when}{message}", flush=True)


class Result:
    def __init__(self, argv: list[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv, self.returncode, self.stdout, self.stderr = argv, returncode, stdout, stderr

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(argv: list[str], *, check: bool = True, capture: bool = True, stdin: str | bytes | None = None,
        stdin_file: Any = None, stdout_file: Any = None, env: dict[str, str] | None = None,
        inherit_env: bool = True, timeout: float | None = None, what: str | None = None) -> Result:
    """Run argv (never a shell). Captured: stdout and stderr come back, and a failure's error
    carries the end of stderr (the reason). Not captured: both go to this tool's own output.
    `stdout_file` (a file or descriptor) takes stdout instead, stderr still captured (a dump);
    `inherit_env=False` gives the command `env` alone, not this tool's environment too."""
    text = not isinstance(stdin, bytes)
    pipe = subprocess.PIPE if capture else None
    try:
        proc = subprocess.run(argv, input=stdin, stdin=stdin_file,
                              stdout=pipe if stdout_file is None else stdout_file,
                              stderr=pipe if capture else subprocess.STDOUT,
                              env={**(os.environ if inherit_env else {}), **(env or {})},
                              timeout=timeout, text=text, check=False)
    except FileNotFoundError:
        raise OneboxError(f"{argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:  # subprocess.run has killed it (SIGKILL) and reaped it
        raise CommandTimeout(what or " ".join(argv[:3]), timeout or 0) from None
    out: Any = proc.stdout if capture else ""  # str, or bytes for bytes in (None with stdout_file)
    err: Any = proc.stderr if capture else ""
    if not text:
        out = (out or b"").decode(errors="replace")
        err = (err or b"").decode(errors="replace")
    result = Result(argv, proc.returncode, out or "", err or "")
    if check and not result.ok:
        raise failure(result, what)
    return result


# runc's reason when it could not start a container or an exec, now and then, under load or nested
# Docker: nothing of the command ran, so running it again is safe.
RUNC_NOT_STARTED = "unable to start container process"


RUNC_ATTEMPTS = 3


def run_until_started(run_once: Callable[[], Result], what: str, not_started: Callable[[Result], bool]) -> Result:
    """run_once() again (up to RUNC_ATTEMPTS) while `not_started` says runc did not start it; any
    other failure raises at once, with its reason."""
    for attempt in range(1, RUNC_ATTEMPTS + 1):
        result = run_once()
        if result.ok:
            return result
        if not not_started(result) or attempt == RUNC_ATTEMPTS:
            raise failure(result, what)
        log(f"{what}: docker could not start it (attempt {attempt}); trying again")
        time.sleep(attempt)
    raise AssertionError("unreachable")


def failure(result: Result, what: str | None = None) -> OneboxError:
    """The error of a failed command: what it was, its exit code and the end of its output."""
    reason = " | ".join((result.stderr or result.stdout).strip().splitlines()[-6:])
    return OneboxError(f"{what or ' '.join(result.argv[:4])} failed (exit {result.returncode})"
                       + (f": {reason}" if reason else ""))


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def write_atomic(path: Path, content: str | bytes, mode: int = 0o600) -> None:
    """A reader (or a crash) never sees half a file: write beside it, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content.encode() if isinstance(content, str) else content)
    os.chmod(partial, mode)
    partial.replace(path)


def write_json(path: Path, data: Any, mode: int = 0o600) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n", mode)


@contextlib.contextmanager
def file_lock(path: Path, timeout: float, holder: Callable[[], str] | None = None,
              on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """An exclusive flock, waited for up to `timeout` seconds. The kernel drops it when its
    holder dies, so a stale lock is simply taken over. `holder()` names who waits on us."""
    path.parent.mkdir(parents=True, exist_ok=True)
    holder_file = path.with_name(path.name + ".holder")
    with path.open("a+") as handle:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                who = holder_file.read_text().strip() if holder_file.exists() else "another run"
                if time.monotonic() >= deadline:
                    raise OneboxError(f"{who} holds the lock {path}; waited {timeout:.0f} s. "
                                      "Run again when it has finished") from None
                if not told and on_wait:
                    on_wait(who)
                    told = True
                time.sleep(1)
        if holder:
            write_atomic(holder_file, holder() + "\n", 0o644)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    """Poll until condition() holds or the time is up; whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
