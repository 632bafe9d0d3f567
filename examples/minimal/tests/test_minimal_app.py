"""The minimal app against a real PostgreSQL: the table made at startup, notes, DATABASE_URL_FILE."""

from __future__ import annotations

from collections.abc import Iterator

import main
import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def use_url(monkeypatch) -> Iterator[None]:
    for name in ("DATABASE_URL", "DATABASE_URL_FILE", "ONEBOX_RELEASE"):
        monkeypatch.delenv(name, raising=False)
    main.database_url.cache_clear()
    yield
    main.database_url.cache_clear()


def test_notes_with_url_from_a_file(database_url, use_url, tmp_path, monkeypatch) -> None:
    # The file form (Docker secrets), with SQLAlchemy's scheme and a final newline.
    (tmp_path / "url").write_text(database_url.replace("postgresql://", "postgresql+psycopg://") + "\n")
    monkeypatch.setenv("DATABASE_URL_FILE", str(tmp_path / "url"))
    monkeypatch.setenv("ONEBOX_RELEASE", "r1")
    with TestClient(main.app) as client:  # startup creates the table
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/version").json() == {"version": main.VERSION, "release": "r1"}
        created = client.post("/notes", json={"text": "hello"})
        assert created.status_code == 201
        note = created.json()
        assert client.get(f"/notes/{note['id']}").json() == {"id": note["id"], "text": "hello"}
        assert client.get("/notes/999999").status_code == 404
        assert client.post("/notes", json={"text": ""}).status_code == 422
    # A second start (a new version) finds the table and keeps the data.
    monkeypatch.delenv("DATABASE_URL_FILE")
    monkeypatch.setenv("DATABASE_URL", database_url)
    main.database_url.cache_clear()
    with TestClient(main.app) as client:
        assert client.get(f"/notes/{note['id']}").json()["text"] == "hello"


def test_health_without_database(use_url, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://x:y@127.0.0.1:1/z")
    client = TestClient(main.app)  # no `with`: no startup, as if the database were down
    assert client.get("/health").status_code == 200
    assert client.post("/notes", json={"text": "x"}).status_code == 503
