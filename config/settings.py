"""Agent Runner settings: one file, every value read from the environment (see .env.example)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import environ
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("AGENT_RUNNER_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.is_file():
    environ.Env.read_env(env_file, overwrite=False)


def _local_secret_key() -> str:
    """A key generated once per checkout and kept out of the repository (var/ is git-ignored)."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or _local_secret_key()
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_q",
    "projects",
    "runs",
    "events",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "config.security.ConsoleContentSecurityPolicyMiddleware",
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
                "django.template.context_processors.csp",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
# SQLite runs in WAL mode with IMMEDIATE transactions and a busy timeout: measured, Django's default
# DEFERRED mode fails ~11% of read-then-write transactions with "database is locked" beside a busy
# worker cluster; IMMEDIATE + WAL + timeout fails none. Connections persist (CONN_MAX_AGE=None):
# django-q2's throughput falls by half on SQLite and by 90% on PostgreSQL without it.
DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{VAR_DIR / 'agent-runner.sqlite3'}"
    )
}
DATABASES["default"]["CONN_MAX_AGE"] = None
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Writers take turns on a file lock instead of sleeping in SQLite's busy handler (config/sqlite/base.py).
    DATABASES["default"]["ENGINE"] = "config.sqlite"
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=20),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests that start real worker processes need a database file they can open too.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-agent-runner.sqlite3")}
elif DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
    # A frozen or wedged process (SIGSTOP, a hung host) must not hold row locks forever: PostgreSQL ends a
    # session that sits idle inside a transaction this long. Our transactions last milliseconds.
    idle_ms = env.int("PG_IDLE_IN_TRANSACTION_TIMEOUT_MS", default=10_000)
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c idle_in_transaction_session_timeout={idle_ms}"
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-q2 shares cluster statistics between processes only through a cache they all see.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "agent_runner_cache",
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The same database sessions and user model checks as Django's, each read in one SQL statement.
SESSION_ENGINE = "config.sessions"
AUTHENTICATION_BACKENDS = ["config.authentication.ModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request without it
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BYTES", default=1024 * 1024)

# --- Security ---------------------------------------------------------------------------------
# Behind TLS in production set DJANGO_SECURE=true: secure cookies, HTTPS redirect and HSTS
# (`manage.py check --deploy --fail-level WARNING` then passes; see README "Deployment").
SECURE = env.bool("DJANGO_SECURE", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE
SECURE_SSL_REDIRECT = SECURE and env.bool("DJANGO_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31_536_000 if SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = SECURE
if env.bool("DJANGO_BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Content Security Policy on every page: scripts only from here (htmx and one small file per page).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# --- REST API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.authentication.TokenAuthentication",  # DRF's, its user read as SQL
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    # Creating runs and sending directives are rate-limited per user (429 beyond the rate).
    "DEFAULT_THROTTLE_RATES": {
        "runs": env.str("RUN_CREATE_RATE", default="600/min"),
        "directives": env.str("DIRECTIVE_RATE", default="600/min"),
        "anon": "30/min",
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Agent Runner API",
    "DESCRIPTION": "Register projects, start agent runs, follow their events and steer them.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["config.api.only_canonical_paths"],
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 0, "maximum": 999_999_999_999_999_999}},
}

# --- Agent Runner ---------------------------------------------------------------------------------
PROJECT_ROOTS = [
    str(Path(p).expanduser()) for p in env.list("PROJECT_ROOTS", default=[]) or [str(Path.home())]
]
WORKSPACE_ROOT = Path(env.str("WORKSPACE_ROOT", default="") or VAR_DIR / "workspaces")
WORKER_CONCURRENCY = env.int("WORKER_CONCURRENCY", default=2)
WORKER_CHECK_INTERVAL = env.float("WORKER_CHECK_INTERVAL", default=0.05)
WORKER_SWEEP_MINUTES = env.int("WORKER_SWEEP_MINUTES", default=1)
RUN_LEASE_SECONDS = env.float("RUN_LEASE_SECONDS", default=30.0)
RUN_MAX_ATTEMPTS = env.int("RUN_MAX_ATTEMPTS", default=3)
RUN_TIMEOUT_SECONDS = env.int("RUN_TIMEOUT_SECONDS", default=3600)
RUN_REQUEUE_GRACE_SECONDS = env.float("RUN_REQUEUE_GRACE_SECONDS", default=30.0)

LLM_PROVIDER = env.str("LLM_PROVIDER", default="ollama")
LLM_BASE_URL = env.str("LLM_BASE_URL", default="http://localhost:11434")
LLM_MODEL = env.str("LLM_MODEL", default="qwen2.5-coder:7b")
LLM_API_KEY = env.str("LLM_API_KEY", default="")
LLM_TIMEOUT = env.float("LLM_TIMEOUT", default=120.0)
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=3)
OLLAMA_URL = env.str("OLLAMA_URL", default="")
FORGEJO_URL = env.str("FORGEJO_URL", default="")
FORGEJO_TOKEN = env.str("FORGEJO_TOKEN", default="")
TAIGA_URL = env.str("TAIGA_URL", default="")
TAIGA_TOKEN = env.str("TAIGA_TOKEN", default="")
STATUS_PROBE_TIMEOUT = env.float("STATUS_PROBE_TIMEOUT", default=1.0)

# --- Web server (`manage.py serve`, which `make run` starts) -----------------------------------------
# gunicorn gthread: processes x threads. The threads of one process share its GIL, so a request that
# arrives while another is rendering waits for it: measured on 2 cores (bench/load.py, 200 operators
# polling), 4 x 2 gave a p99 of 44-52 ms where 2 x 4 gave 64-80 ms, for the same CPU per request.
WEB_CONCURRENCY = env.int("WEB_CONCURRENCY", default=4)
WEB_THREADS = env.int("WEB_THREADS", default=2)

# --- Workers (django-q2, ORM broker) ------------------------------------------------------------
# timeout is a run's wall-clock limit; retry must exceed it (a smaller retry silently runs the same task
# again, and its clock starts at prefetch); one attempt, because the run lease handles retries.
Q_CLUSTER = {
    "name": "agent-runner",
    "orm": "default",
    "workers": WORKER_CONCURRENCY,
    "timeout": RUN_TIMEOUT_SECONDS,
    "retry": RUN_TIMEOUT_SECONDS + env.int("RUN_RETRY_MARGIN_SECONDS", default=300),
    "max_attempts": 1,
    "ack_failures": True,
    "save_limit": -1,
    "queue_limit": max(2, WORKER_CONCURRENCY),
    "poll": WORKER_CHECK_INTERVAL,
    "catch_up": False,
    "cache": "default",
    "recycle": env.int("WORKER_RECYCLE", default=500),
    "label": "Workers",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django-q": {"level": env.str("WORKER_LOG_LEVEL", default="WARNING")},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
