"""Response headers and log lines as an attacker or an auditor of the logs sees them:
Content-Security-Policy everywhere, X-Forwarded-Proto only from a trusted proxy, no query
string values and no traceback for a plain 4xx in the logs."""

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from tests import factories

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = [part.strip().split() for part in header.split(";") if part.strip()]
    return {d[0]: d[1:] for d in directives}


def assert_strict(response) -> dict[str, list[str]]:
    csp = policy(response)
    assert csp["default-src"] == ["'self'"]
    for directive in ("default-src", "script-src", "style-src"):
        assert "'unsafe-inline'" not in csp.get(directive, [])
        assert "'unsafe-eval'" not in csp.get(directive, [])
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
    return csp


def test_the_admin_has_a_strict_content_security_policy(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    csp = assert_strict(response)
    html = response.content.decode()
    # The admin's one inline block (our stylesheet) carries this response's nonce.
    nonces = set(re.findall(r'<style nonce="([^"]+)"', html))
    assert nonces and {f"'nonce-{n}'" for n in nonces} <= set(csp["style-src"])
    assert "<script>" not in html


def test_swagger_ui_inline_script_carries_the_headers_nonce(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    csp = assert_strict(response)
    html = response.content.decode()
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
    assert inline, "Swagger UI's initialiser is inline"
    for attributes in inline:
        nonce = re.search(r'nonce="([^"]+)"', attributes)
        assert nonce and f"'nonce-{nonce.group(1)}'" in csp["script-src"]
    assert re.findall(r"<style nonce=", html)
    # A second answer has another nonce.
    again = policy(client.get("/api/docs/"))["script-src"]
    assert again != csp["script-src"]


@pytest.mark.parametrize("path", ["/api/v1/merchants/", "/api/stamp/v1/validate", "/healthz"])
def test_api_answers_carry_the_policy(client, path):
    response = client.get(path)
    assert_strict(response)
    assert not any("nonce" in v for v in policy(response).get("script-src", []))


def test_the_dashboard_uses_no_inline_style_attribute(client):
    from django.test import Client

    from ledger.roles import staff_create

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = staff_create(username="root-1", role="admin")[0]
    browser = Client()
    browser.force_login(user)
    response = browser.get("/admin/dashboard/")
    assert response.status_code == 200
    assert " style=" not in response.content.decode()


# --- X-Forwarded-Proto ----------------------------------------------------------------------


def test_x_forwarded_proto_from_a_client_is_not_trusted(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = None  # the default: TRUSTED_PROXY off
    response = client.get("/admin/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")


def test_behind_a_trusted_proxy_x_forwarded_proto_counts(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client.get("/admin/", HTTP_X_FORWARDED_PROTO="https").status_code == 302  # login
    assert client.get("/admin/").status_code == 301


@pytest.mark.parametrize(
    ("trusted", "expected"), [("", "None"), ("0", "None"), ("1", "HTTP_X_FORWARDED_PROTO")]
)
def test_trusted_proxy_setting_sets_the_proxy_ssl_header(trusted, expected):
    env = {**os.environ, "DEBUG": "0", "TRUSTED_PROXY": trusted}
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'loyalty.settings');"
        " django.setup(); from django.conf import settings as s;"
        " print((s.SECURE_PROXY_SSL_HEADER or [None])[0], s.TRUSTED_PROXY)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == [expected, str(trusted == "1")]


# --- log lines ------------------------------------------------------------------------------

SECRET = "0xa11ce00000000000000000000000000000000001"
EMAIL = "someone.private@example.com"


def written(records) -> str:
    """The records as the production JSON formatter writes them."""
    formatter = JsonFormatter(settings.LOGGING["formatters"]["json"]["fmt"])
    for record in records:
        record.request_id = getattr(record, "request_id", "")
    return "\n".join(formatter.format(record) for record in records)


def test_4xx_log_lines_carry_no_query_values(client, caplog):
    caplog.set_level(logging.INFO)
    client.get(f"/get-points-by-address?address={SECRET}&x={EMAIL}")  # unsigned: 401
    client.get(f"/no-such-page?email={EMAIL}")  # 404
    client.get(f"/api/v1/customers/?email={EMAIL}")  # 401
    text = written(caplog.records)
    assert "/get-points-by-address" in text and "/no-such-page" in text
    assert SECRET not in text and EMAIL not in text and "example.com" not in text
    access = [r for r in caplog.records if r.name == "loyalty.access"]
    assert [r.query for r in access] == [["address", "x"], ["email"], ["email"]]
    assert all(r.path.startswith("/") and "?" not in r.path for r in access)


def test_a_plain_403_or_404_logs_one_line_without_a_traceback(client, caplog):
    norole = factories.UserFactory(username="norole-1", is_staff=True)
    client.force_login(norole)
    caplog.set_level(logging.INFO)
    assert client.get("/admin/accounts/customer/").status_code == 403
    assert client.get("/admin/nothing-here/").status_code == 404
    django_lines = [r for r in caplog.records if r.name == "django.request"]
    assert [r.status_code for r in django_lines] == [403, 404]
    assert all(r.exc_info is None for r in django_lines)
    assert "Traceback" not in written(caplog.records)


def test_5xx_keep_their_traceback():
    from loyalty.request_id import RedactingFilter

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord(
            "django.request",
            logging.ERROR,
            __file__,
            1,
            "Internal Server Error: /x",
            (),
            sys.exc_info(),
        )
    record.status_code = 500
    assert RedactingFilter().filter(record)
    assert record.exc_info is not None
    assert "Traceback" in written([record])
