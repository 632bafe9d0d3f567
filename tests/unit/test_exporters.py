"""What the PostgreSQL exporter is given: a SCRAM verifier PostgreSQL accepts (RFC 7677's own
exchange checks it), SQL that never carries the password, an auth module the exporter reads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from onebox.server import exporters

# RFC 7677, section 3: user "user", password "pencil".
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
CLIENT_FIRST_BARE = "n=user,r=rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
CLIENT_FINAL_BARE = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
PROOF = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
SERVER_SIGNATURE = base64.b64decode("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")


def test_the_verifier_checks_rfc_7677s_exchange_as_a_server_would() -> None:
    verifier = exporters.scram_verifier("pencil", SALT, 4096)
    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    assert method == "SCRAM-SHA-256" and iterations_salt == "4096:W22ZaJ0SNY7soEsUEjb6gQ=="
    stored_key, server_key = (base64.b64decode(part) for part in keys.split(":"))
    auth_message = f"{CLIENT_FIRST_BARE},{SERVER_FIRST},{CLIENT_FINAL_BARE}".encode()
    # The server recovers the client key from the proof and checks it against the stored key ...
    client_signature = hmac.digest(stored_key, auth_message, "sha256")
    client_key = bytes(a ^ b for a, b in zip(PROOF, client_signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key
    # ... and proves itself with the server key.
    assert hmac.digest(server_key, auth_message, "sha256") == SERVER_SIGNATURE
    assert exporters.scram_verifier("pencils", SALT, 4096) != verifier


def test_the_sql_carries_a_verifier_not_the_password_and_grants_only_pg_monitor() -> None:
    password = "a-password-of-the-server"
    sql = exporters.role_sql(exporters.scram_verifier(password, b"0123456789abcdef"))
    assert password not in sql
    assert "PASSWORD 'SCRAM-SHA-256$4096:" in sql
    assert "\\gexec" in sql and "NOSUPERUSER" in sql and "lock_timeout" in sql
    assert [line for line in sql.splitlines() if "GRANT" in line] == ["GRANT pg_monitor TO onebox_monitor;"]


def test_the_auth_module_names_the_role_and_times_out() -> None:
    module = json.loads(exporters.exporter_config("pw"))["auth_modules"]["onebox"]
    assert module["userpass"] == {"username": "onebox_monitor", "password": "pw"}
    assert module["options"] == {"sslmode": "disable", "connect_timeout": "5"}
