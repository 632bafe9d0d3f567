"""The zipapp's entry: `onebox-release ...` and `onebox-backup ...` are links to it, so
the name it was started by picks the tool (or the first argument: `onebox-server.pyz release ...`)."""

from __future__ import annotations

import os
import sys

from onebox.contract.layout import EXIT_USAGE


def main() -> int:
    name = os.path.basename(sys.argv[0])
    args = sys.argv[1:]
    if not name.startswith("onebox-release") and not name.startswith("onebox-backup"):
        if not args or args[0] not in ("release", "backup"):
            print("usage: onebox-server.pyz release|backup ...", file=sys.stderr)
            return EXIT_USAGE
        name, args = f"onebox-{args[0]}", args[1:]
    if name.startswith("onebox-backup"):
        from onebox.server.backup.cli import main as backup
        return backup(args)
    from onebox.server.cli import main as release
    return release(args)


if __name__ == "__main__":
    sys.exit(main())
