"""Project-level promises: migrations, health check, settings, zero-setup SQLite start."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_models_and_migrations_agree():
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())


@pytest.mark.django_db
def test_healthz_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert response["X-Request-ID"]


def test_request_id_is_echoed_when_sane_and_replaced_when_not(client, db):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\n")["X-Request-ID"]
    assert replaced != "bad id\n" and len(replaced) == 32


def test_app_starts_on_sqlite_with_no_database_configured(tmp_path):
    """What `make run` does before serving: migrate and seed on a fresh SQLite file."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")

    def run(*command: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, *command],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result

    run("manage.py", "migrate", "--noinput", "-v0")
    run("manage.py", "createcachetable")
    demo = run("manage.py", "seed_demo", "--json").stdout
    run("manage.py", "seed_demo")
    assert "reconcile OK" in run("manage.py", "reconcile").stdout
    # The partner APIs work on the demo database as a client would use them (SQLite has no
    # one-statement moves: the ORM path runs, with the same answers).
    result = run("tests/demo_smoke.py", stdin=demo)
    calls = json.loads(result.stdout)
    assert calls["get"][0] == 200 and calls["get"][1]["points"] == 5000
    assert calls["deduct"][0] == 200
    assert calls["deduct_again"][0] == 409
    assert (
        calls["deduct_again"][1]["partnerTransactionId"]
        == calls["deduct"][1]["partnerTransactionId"]
    )
    assert calls["deduct_too_much"][0] == 422
    assert calls["credit"][0] == calls["debit"][0] == 200
    assert calls["debit"][1]["customer"]["balance"] == 1500  # 1500 + 5 - 5
    assert calls["remove"] == [200, {"code": 0, "message": "", "result": None}]


def test_settings_come_from_the_environment():
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "k" * 60,
        "ALLOWED_HOSTS": "a.example, b.example",
        "DATABASE_URL": "postgres://u:p@db.example:6543/prod",
        "REDIS_URL": "redis://r:6379/1",
    }
    code = (
        "from django.conf import settings as s; import json; "
        "print(json.dumps([s.DEBUG, s.SECRET_KEY, s.ALLOWED_HOSTS, "
        "s.DATABASES['default']['HOST'], s.DATABASES['default']['PORT'], "
        "s.CACHES['default']['BACKEND'], s.CACHES['default']['LOCATION']]))"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django, os; os.environ.setdefault("
            f"'DJANGO_SETTINGS_MODULE', 'loyalty.settings'); django.setup(); {code}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == (
        '[false, "' + "k" * 60 + '", ["a.example", "b.example"], "db.example", 6543, '
        '"django_redis.cache.RedisCache", "redis://r:6379/1"]'
    )


@pytest.mark.django_db
def test_healthz_is_not_redirected_to_https_but_the_rest_is(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/admin/").status_code == 301


def test_log_lines_are_json_with_the_request_id(client, db, capsys):
    import json
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)  # the production config, JSON lines
    try:
        client.get("/healthz", HTTP_X_REQUEST_ID="req-42")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    access = [line for line in lines if line["logger"] == "loyalty.access"]
    assert access and access[-1]["request_id"] == "req-42"
    assert access[-1]["status"] == 200 and access[-1]["path"] == "/healthz"
    assert {"time", "level", "duration_ms", "method"} <= access[-1].keys()


def test_check_deploy_is_clean_with_production_settings():
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "x7#" + "k2P9q" * 12,
        "ALLOWED_HOSTS": "loyalty.example",
        "SECURE_SSL_REDIRECT": "1",
        "FIELD_ENCRYPTION_KEY": "q2Zl0z3Y0m2Xq8n2b3o4Jm0Zx7Vd5lWcXr2Qe8yTt1U=",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
