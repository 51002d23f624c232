"""Settings, read from the environment (see README "Configuration")."""

import base64
import datetime as dt
import hashlib
import os
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF

from loyalty.http.limits import MAX_BODY_BYTES

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


DEBUG = env_bool("DEBUG", False)
# The fallback key is for development only; `check --deploy` flags it (security.W009).
SECRET_KEY = os.environ.get("SECRET_KEY") or "django-insecure-development-only-key-do-not-deploy"
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
if DEBUG and not ALLOWED_HOSTS:
    ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]

# Partner HMAC secrets are encrypted at rest with this Fernet key. Set FIELD_ENCRYPTION_KEY
# (a urlsafe-base64 32-byte key) to decouple it from SECRET_KEY; otherwise it is derived.
FIELD_ENCRYPTION_KEY = (
    os.environ.get("FIELD_ENCRYPTION_KEY")
    or base64.urlsafe_b64encode(
        hashlib.sha256(("field-encryption:" + SECRET_KEY).encode()).digest()
    ).decode()
)

INSTALLED_APPS = [
    "ledger.apps.BackOfficeAdminConfig",  # django.contrib.admin with the back-office site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",  # staff API tokens, stored as digests (accounts.tokens); page: ledger.admin.tokens
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "axes",
    "csp",
    "loyalty",
    "accounts",
    "partners",
    "ledger",
]

MIDDLEWARE = [
    "loyalty.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: turns a refused login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "loyalty.urls"
WSGI_APPLICATION = "loyalty.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# DATABASE_URL selects the server (PostgreSQL in production and tests); without it the app
# runs on a local SQLite file so that `make run` needs nothing installed.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        # Persistent connections (CONN_MAX_AGE) are checked by Django; pooled ones by the
        # pool, below (Django's check would cost a round trip on every request).
        conn_health_checks=not env_bool("DATABASE_POOL", False),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})
    # Server-side prepared statements for the hot paths' statements (loyalty.db.
    # prepared_cursor; Django's own cursors bind on the client and never prepare).
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = env_int("DATABASE_PREPARE_THRESHOLD", 2)
    if env_bool("DATABASE_POOL", False):
        # psycopg's pool; exclusive with persistent connections (CONN_MAX_AGE must be 0).
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": env_int("DATABASE_POOL_MIN_SIZE", 2),
            "max_size": env_int("DATABASE_POOL_MAX_SIZE", 10),
            "timeout": 10,
        }
        # Django's backend, with the pool's health check of loyalty.pool_check: a connection
        # is pinged before use only when it sat idle past DATABASE_POOL_CHECK_IDLE_SECONDS,
        # so a dead one is still replaced and a busy one costs no round trip.
        DATABASES["default"]["ENGINE"] = "loyalty.pooled_postgresql"
DATABASE_POOL_CHECK_IDLE_SECONDS = float(os.environ.get("DATABASE_POOL_CHECK_IDLE_SECONDS") or 1)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "loyalty_cache",
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# A reverse proxy in front that sets X-Forwarded-For (appending the peer it saw) and
# X-Forwarded-Proto. Off: both headers are the client's own text and are ignored.
TRUSTED_PROXY = env_bool("TRUSTED_PROXY", False)

# Failed logins (the admin's form, which is also the staff API's session login) are counted
# by django-axes per (username, client address): after LOGIN_FAILURE_LIMIT failures that
# pair is refused, even with the right password, for LOGIN_COOLOFF_MINUTES (each further
# try restarts the wait). Per pair, so colleagues behind one address and the account's
# owner elsewhere are not locked out by someone else's guesses. A success resets the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "loyalty.client_ip.client_ip"
AXES_LOCKOUT_TEMPLATE = "admin/backoffice/lockout.html"

LANGUAGE_CODE = "en-us"
FORMAT_MODULE_PATH = ["loyalty.formats"]  # ISO-like dates and 24-hour times in the admin
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
SIMPLE_HISTORY_REVERT_DISABLED = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.tokens.StaffTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# Staff API tokens (django-rest-knox): stored as a SHA-512 digest plus the key's first 15
# characters, valid STAFF_TOKEN_TTL_HOURS (default 30 days: long enough for a script run by
# support, short enough that a forgotten key dies), revoked by `issue_token USER --revoke`.
STAFF_TOKEN_TTL_HOURS = env_int("STAFF_TOKEN_TTL_HOURS", 720)
REST_KNOX = {
    "TOKEN_TTL": dt.timedelta(hours=STAFF_TOKEN_TTL_HOURS),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Loyalty back office API",
    "DESCRIPTION": "Partner APIs (Stamp, Balance, Points) and the staff REST API.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "BalanceUpdateStatusEnum": "ledger.models.BalanceUpdate.Status",
        "RedemptionOutcomeEnum": ["claimed", "reverted"],
        "PointTransactionKindEnum": "ledger.models.PointTransaction.Kind",
        "ApprovalStatusEnum": "ledger.models.approvals.Approval.Status",
        "CorrectionKindEnum": "ledger.models.approvals.Kind",
        "StaffLimitKindEnum": "ledger.models.approvals.LIMIT_KINDS",
    },
}

# Content-Security-Policy on every response (django-csp): nothing but this origin, and no
# inline script or style unless it carries the response's nonce (`request.csp_nonce`: the
# admin's stylesheet block, Swagger UI's initialiser). Images may be data: URIs (Swagger UI's
# icons). The nonce appears in the header only on pages that used it.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Request bodies above 64 KiB are refused (413 in each API family's shape).
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BODY_BYTES

# Business limits (README, wire reference).
STAMP_REMOVALS_PER_STAMP_PER_DAY = env_int("STAMP_REMOVALS_PER_STAMP_PER_DAY", 10)
PARTNER_THROTTLE_RATE = os.environ.get("PARTNER_THROTTLE_RATE", "6000/min")
STAFF_API_THROTTLE_RATE = os.environ.get("STAFF_API_THROTTLE_RATE", "1200/min")
POINTS_API_MAX_SKEW_SECONDS = env_int("POINTS_API_MAX_SKEW_SECONDS", 300)
IDEMPOTENCY_KEY_RETENTION_HOURS = env_int("IDEMPOTENCY_KEY_RETENTION_HOURS", 24)

# Webhooks and the event bus (README "Webhooks"); `manage.py run_worker` reads these.
# Private, loopback and link-local receivers are refused unless this is on (local demos).
WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", False)
# A pending approval request expires after this many seconds (README: Approvals).
APPROVAL_TTL_SECONDS = env_int("APPROVAL_TTL_SECONDS", 259200)
# Correction batches (README: Bulk corrections): rows the worker applies per round, and a
# pause after each chunk to spread a big batch's load (seconds; 0: none).
BATCH_CHUNK = env_int("BATCH_CHUNK", 500)
BATCH_PAUSE_SECONDS = float(os.environ.get("BATCH_PAUSE_SECONDS") or 0)
# Connections at once (PostgreSQL; 1: none besides the caller's) for the worker's apply (rows
# split by customer; their commits share WAL flushes) and for an upload's preview
# (bench/RESULTS-batches.md measured 1, 2, 4 and 8).
BATCH_THREADS = env_int("BATCH_THREADS", 4)
BATCH_PREVIEW_THREADS = env_int("BATCH_PREVIEW_THREADS", 4)
# A worker's round applies chunks for up to this long (at least one), on the same connections.
BATCH_STEP_SECONDS = float(os.environ.get("BATCH_STEP_SECONDS") or 2)
WEBHOOK_RETRY_SCHEDULE = os.environ.get(
    "WEBHOOK_RETRY_SCHEDULE", "5,300,1800,7200,18000,36000,36000"
)
WEBHOOK_TIMEOUT = float(os.environ.get("WEBHOOK_TIMEOUT") or 15)
WEBHOOK_BATCH = env_int("WEBHOOK_BATCH", 100)  # deliveries one worker claims per round
WEBHOOK_THREADS = env_int("WEBHOOK_THREADS", 16)  # concurrent POSTs of one worker
WORKER_POLL_SECONDS = float(os.environ.get("WORKER_POLL_SECONDS") or 1)
NATS_URL = os.environ.get("NATS_URL", "")
NATS_STREAM = os.environ.get("NATS_STREAM", "LOYALTY_EVENTS")

# The load benchmark's baseline endpoint (bench/load.py); off in every real deployment.
BENCH_NOOP_ENDPOINT = env_bool("BENCH_NOOP_ENDPOINT", False)

# Logs: JSON lines (one object a line, with the request id) unless LOG_FORMAT=plain.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain" if DEBUG else "json")
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "loyalty.request_id.RequestIdFilter"},
        "redacting": {"()": "loyalty.request_id.RedactingFilter"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT if LOG_FORMAT in ("json", "plain") else "json",
            "filters": ["request_id", "redacting"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own handlers go (its DEBUG console handler wrote every 4xx/5xx a second
        # time, and django.security.* records with their tracebacks): everything reaches the
        # root handler once.
        "django": {"handlers": []},
        # Our access line replaces runserver's (it carries the request id and duration), and
        # django.request already logs each 4xx/5xx.
        "django.server": {"handlers": [], "level": "CRITICAL", "propagate": False},
        # Every 4xx/5xx is logged here with the request attached: no query values, and no
        # traceback for a plain 403/404 (see RedactingFilter; also on the handler, for the
        # django.security.* loggers).
        "django.request": {"filters": ["redacting"]},
        "loyalty.access": {"level": os.environ.get("ACCESS_LOG_LEVEL", "INFO")},
    },
}

if TRUSTED_PROXY:
    # Only a proxy that sets the header itself may tell Django the request came over HTTPS;
    # from anyone else it is the client's own claim.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
