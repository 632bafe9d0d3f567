"""PostgreSQL: `pg_dump -Fc` inside its container, and a restore that swaps a scratch
database in only when it is complete."""

from __future__ import annotations

import contextlib
from pathlib import Path

from onebox.server import docker
from onebox.server.backup.config import Config
from onebox.server.backup.docker import run_exec
from onebox.server.basics import OneboxError, log, run


def psql_argv(config: Config, pg: str, database: str, *sql: str) -> list[str]:
    commands = [part for statement in sql for part in ("-c", statement)]
    return docker.exec_in(pg, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", config.postgres_user, "-d", database,
                     *commands, user="postgres")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def dump_postgres(config: Config, pg: str, dest: Path) -> None:
    """pg_dump -Fc inside the container, as the postgres OS user over the local socket."""
    log(f"dumping PostgreSQL database {config.postgres_db}")
    with dest.open("wb") as out:
        run(docker.exec_in(pg, "pg_dump", "-U", config.postgres_user, "-d", config.postgres_db, "-Fc", user="postgres"),
            stdout_file=out, what="pg_dump")
    # The archive must be readable by pg_restore, or it is no backup.
    with dest.open("rb") as archive:
        run(docker.exec_in(pg, "pg_restore", "-l", user="postgres", stdin=True), stdin_file=archive,
            what="checking the dump with pg_restore -l")


def restore_postgres(config: Config, pg: str, dump: Path) -> None:
    """Restore into a scratch database, then swap it in: a failed restore leaves the data as it was."""
    db, user = config.postgres_db, config.postgres_user
    scratch = f"{db[:40]}__onebox_restore"
    maintenance = "postgres" if db != "postgres" else "template1"
    drop_scratch = f"DROP DATABASE IF EXISTS {quote_ident(scratch)} WITH (FORCE)"
    log(f"restoring PostgreSQL into a scratch database {scratch}")
    run_exec(psql_argv(config, pg, maintenance, drop_scratch,
                       f"CREATE DATABASE {quote_ident(scratch)} OWNER {quote_ident(user)} TEMPLATE template0"),
             what="creating the scratch database")
    try:
        with dump.open("rb") as archive:
            run(docker.exec_in(pg, "pg_restore", "-U", user, "-d", scratch, "--no-owner", "--role", user,
                          "--exit-on-error", "--single-transaction", user="postgres", stdin=True),
                stdin_file=archive, what="pg_restore")
    except OneboxError:
        with contextlib.suppress(OneboxError):
            run(psql_argv(config, pg, maintenance, drop_scratch), what="dropping the scratch database")
        raise
    log(f"replacing database {db} with the restored one")
    run(psql_argv(config, pg, maintenance, f"DROP DATABASE IF EXISTS {quote_ident(db)} WITH (FORCE)",
                  f"ALTER DATABASE {quote_ident(scratch)} RENAME TO {quote_ident(db)}"),
        what="swapping in the restored database")
