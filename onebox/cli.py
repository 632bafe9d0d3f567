"""`onebox`: the operator's commands, per inventory, on top of `pyinfra exec`.

    onebox status   inventories/prod.py              # live release, services, certificate, backups, disk, updates
    onebox releases inventories/prod.py              # releases kept, the live one marked
    onebox logs     inventories/prod.py [-f] [-n 200] [--raw] [worker]
    onebox run      inventories/prod.py -- alembic current

Each runs `onebox-release <command>` on every host of the inventory (with sudo when the
inventory connects as the deploy user) and exits non-zero when any host needs attention,
so `onebox status` can run from cron or CI.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

COMMANDS = ("status", "releases", "logs", "run")
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
HOST_LINE = re.compile(r"^\[[^\]]+\] ")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    command, inventory, rest = args[0], args[1], args[2:]
    remote = " ".join(shlex.quote(part) for part in ["onebox-release", command, *rest])
    run = subprocess.Popen([PYINFRA, "-y", inventory, "exec", "--", remote], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    assert run.stdout is not None
    transcript = []
    for line in run.stdout:  # streamed, so `logs -f` follows
        transcript.append(line)
        if HOST_LINE.match(line):  # the server's own output, "[host] ...": pyinfra's chatter stays out
            print(line, end="", flush=True)
    if run.wait() != 0 and not any(HOST_LINE.match(line) for line in transcript):
        print("".join(transcript[-20:]), end="", file=sys.stderr)  # it never got that far: say why
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
