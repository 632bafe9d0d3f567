"""Dependencies that are down or late: the app must boot and report it, not crash."""

import time

import pytest
from fastapi.testclient import TestClient

from tests.conftest import RedisServer, free_port


def make_client(**overrides) -> TestClient:
    from app.config import Settings
    from app.main import create_app

    return TestClient(create_app(Settings(**overrides)))


def test_boots_and_reports_when_everything_is_down(app_env):
    dead = free_port()  # nothing listens there
    with make_client(postgres_port=dead, redis_url=f"redis://127.0.0.1:{dead}/0") as c:
        assert c.get("/health").json() == {"status": "ok"}
        start = time.monotonic()
        r = c.get("/ready")
        assert time.monotonic() - start < 3, "readiness checks must time out quickly"
        assert r.status_code == 503
        assert r.json() == {"postgres": "error", "redis": "error"}
        # A dependency outage is a 503, not a 500 with a stack trace.
        assert c.get("/items/1").status_code == 503
        assert c.post("/hits").status_code == 503


def test_ready_503_when_redis_port_closed(app_env):
    with make_client(redis_url=f"redis://127.0.0.1:{free_port()}/0") as c:
        r = c.get("/ready")
        assert r.status_code == 503
        assert r.json() == {"postgres": "ok", "redis": "error"}


def test_ready_follows_redis_down_and_back(app_env, tmp_path):
    redis = RedisServer(tmp_path)
    try:
        with make_client(redis_url=redis.url) as c:
            assert c.get("/ready").status_code == 200
            redis.stop()
            r = c.get("/ready")
            assert r.status_code == 503
            assert r.json()["redis"] == "error"
            assert c.get("/health").status_code == 200

            # Same port again: no restart of the app needed.
            redis = RedisServer(tmp_path, port=redis.port)
            deadline = time.monotonic() + 10
            while c.get("/ready").status_code != 200:
                assert time.monotonic() < deadline, "app did not recover"
                time.sleep(0.2)
            # The pub/sub subscriber reconnected as well.
            with c.websocket_connect("/ws/broadcast") as ws:
                ws.send_text("back")
                assert ws.receive_text() == "back"
    finally:
        if redis.proc.poll() is None:
            redis.stop()


@pytest.mark.parametrize("missing", ["APP_SECRET_KEY", "POSTGRES_PASSWORD"])
def test_required_settings(app_env, monkeypatch, missing):
    from app.config import Settings
    from pydantic import ValidationError

    monkeypatch.delenv(missing)
    with pytest.raises(ValidationError):
        Settings()


def test_database_url_quotes_password():
    from app.config import DatabaseSettings

    s = DatabaseSettings(
        postgres_host="postgres",
        postgres_port=5432,
        postgres_user="u",
        postgres_password="a@b:c/d%e",
        postgres_db="db",
    )
    assert s.database_url == "postgresql+asyncpg://u:a%40b%3Ac%2Fd%25e@postgres:5432/db"
