"""The one door for shell syntax in the commands onebox sends to a server.

A command is an argument list: pyinfra's StringCommand with each value in a
QuoteString, or shlex.join / shlex.quote per argument. Only where a command truly
needs the shell (a pipe, `&&`, `||`, a loop, a redirection, `if`) is its text passed
through raw_shell, so `grep -n raw_shell` lists every such place.
"""

from __future__ import annotations


def raw_shell(text: str) -> str:
    """Mark `text` as shell syntax: this is the only door for it in onebox's facts and operations.

    `text` goes to the server's shell as it is. Every value interpolated into it must
    already be quoted (shlex.quote, or QuoteString in a StringCommand); only onebox's
    own literal words may appear unquoted.

        raw_shell(f"cat {shlex.quote(path)} 2>/dev/null || true")
    """
    return text
