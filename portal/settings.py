"""Settings for the governance portal.

One module, driven by environment variables. With none set, the portal runs on
the *embedded default*: SQLite (WAL), Celery on kombu's SQLAlchemy transport in
its own SQLite file, and local file storage under ``var/``. Setting
``DATABASE_URL``, ``CELERY_BROKER_URL`` and ``PORTAL_S3_BUCKET`` moves it to
PostgreSQL, Redis and object storage without any code change.

Secrets have no defaults outside the embedded demo, which generates its own
secret key into ``var/secret_key`` (ignored by git) on first start.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    """Read a boolean variable; anything but 1/true/yes/on is false."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _embedded_secret_key() -> str:
    """Generate the demo's secret key once, into an ignored file (never a default in code)."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


# The embedded default is chosen when no database URL is configured.
EMBEDDED = "DATABASE_URL" not in os.environ

# https://docs.djangoproject.com/en/5.2/ref/settings/#secret-key
if "DJANGO_SECRET_KEY" in os.environ:
    SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
elif EMBEDDED:
    SECRET_KEY = _embedded_secret_key()
else:  # fail closed: production must bring its own key
    raise RuntimeError("DJANGO_SECRET_KEY must be set when DATABASE_URL is set")

# https://docs.djangoproject.com/en/5.2/ref/settings/#debug — off unless asked for.
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "portal",
    "projects",
    "compliance",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.middleware.SecurityHeadersMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.portal_roles",
            ],
        },
    },
]

# https://docs.djangoproject.com/en/5.2/ref/databases/#sqlite-notes
# The web process and the worker write the same SQLite file: WAL, IMMEDIATE
# transactions and a 20 s busy timeout keep "database is locked" away.
if EMBEDDED:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": Path(os.environ.get("PORTAL_SQLITE_PATH", VAR_DIR / "portal.sqlite3")),
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            # Tests share the database with a real worker process, so it must be a file; one per
            # test process, so two suites running side by side never share one.
            "TEST": {"NAME": os.environ.get("PORTAL_TEST_SQLITE_PATH",
                                            str(VAR_DIR / f"test-portal-{os.getpid()}.sqlite3"))},
        }
    }
else:
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if os.environ.get("PORTAL_TEST_DATABASE_NAME"):
        DATABASES["default"]["TEST"] = {"NAME": os.environ["PORTAL_TEST_DATABASE_NAME"]}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# django-guardian: no anonymous user row; anonymous visitors get nothing.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ko", _("Korean"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("PORTAL_TIME_ZONE", "Asia/Seoul")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every request when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(os.environ.get("PORTAL_MEDIA_ROOT", VAR_DIR / "media"))
# Partial chunked uploads live on local disk until complete (see projects/uploads.py).
UPLOAD_PARTIAL_DIR = Path(os.environ.get("PORTAL_UPLOAD_PARTIAL_DIR", VAR_DIR / "uploads-partial"))
CODE_INDEX_DIR = Path(os.environ.get("PORTAL_CODE_INDEX_DIR", VAR_DIR / "code-index"))
# Files larger than this are streamed to a temporary file by Django, never held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# https://docs.djangoproject.com/en/5.2/ref/settings/#storages
if os.environ.get("PORTAL_S3_BUCKET"):
    STORAGES = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": os.environ["PORTAL_S3_BUCKET"],
                "endpoint_url": os.environ.get("PORTAL_S3_ENDPOINT_URL"),
                "default_acl": None,
                "querystring_auth": True,
                "file_overwrite": False,
            },
        },
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    }
else:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }

# https://www.django-rest-framework.org/api-guide/settings/
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Sovereign-AI governance portal API",
    "DESCRIPTION": "Programmes, funded projects, vendor submissions, artifacts (chunked, resumable uploads), "
    "declarations, check runs, findings and reviewer decisions. Object permissions are the same as the pages: "
    "an object you may not see answers 404.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Celery --------------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}"
CELERY_RESULT_BACKEND = None  # the CheckRun row is the result; nothing reads Celery results
CELERY_TASK_IGNORE_RESULT = True
# Late ack + reject on worker loss: a killed worker's task goes back to the queue.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message at a time per process, so a 100B-parameter lineage check never
# holds a licence scan hostage in its prefetch buffer.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "light"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Redis: redeliver unacked tasks after 2 h; longer than our longest hard time limit (1 h).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 7200}
if CELERY_BROKER_URL.startswith("sqla+"):
    # kombu hands these to SQLAlchemy's create_engine; the transport polls every second.
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# The reconciler (compliance.reconcile_check_runs) runs from beat; the embedded
# default starts the worker with --beat so nothing else needs to run.
RECONCILE_INTERVAL_S = float(os.environ.get("PORTAL_RECONCILE_INTERVAL_S", "30"))
# A signed audit checkpoint (portal.audit_checkpoint) at most this often, skipped when no
# event was added: hourly bounds what a database-level attacker can cut unnoticed to one hour.
AUDIT_CHECKPOINT_INTERVAL_S = float(os.environ.get("PORTAL_AUDIT_CHECKPOINT_INTERVAL_S", "3600"))
CELERY_BEAT_SCHEDULE = {
    "reconcile-check-runs": {"task": "compliance.reconcile_check_runs", "schedule": RECONCILE_INTERVAL_S},
    "audit-checkpoint": {"task": "portal.audit_checkpoint", "schedule": AUDIT_CHECKPOINT_INTERVAL_S},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# A running check renews its lease at every progress report; a run whose lease
# lapsed (its worker died) is requeued by the reconciler.
CHECK_LEASE_S = float(os.environ.get("PORTAL_CHECK_LEASE_S", "120"))
# A queued run not picked up for this long is re-sent (the broker may have lost it).
CHECK_QUEUED_STALE_S = float(os.environ.get("PORTAL_CHECK_QUEUED_STALE_S", "300"))
# Dossiers are leased and reconciled like check runs (compliance.services.leases); by
# default with the same numbers: a render renews its lease from a side thread every third of it.
DOSSIER_LEASE_S = float(os.environ.get("PORTAL_DOSSIER_LEASE_S", CHECK_LEASE_S))
DOSSIER_QUEUED_STALE_S = float(os.environ.get("PORTAL_DOSSIER_QUEUED_STALE_S", CHECK_QUEUED_STALE_S))
# Test-only holds (0 unless set), so a real-worker test can kill or re-run work in flight:
# a check holds its outcome this long before recording it, a dossier waits before rendering.
TEST_CHECK_DELAY_S = float(os.environ.get("PORTAL_TEST_CHECK_DELAY_S", "0"))
TEST_DOSSIER_RENDER_DELAY_S = float(os.environ.get("PORTAL_TEST_DOSSIER_RENDER_DELAY_S", "0"))

# --- Dossier signing (see compliance/dossier/signing.py) ------------------------------
DOSSIER_SIGNING_KEY = os.environ.get("DOSSIER_SIGNING_KEY") or str(VAR_DIR / "dossier-signing" / "key.pem")
DOSSIER_SIGNING_CERT = os.environ.get("DOSSIER_SIGNING_CERT") or str(VAR_DIR / "dossier-signing" / "cert.pem")
DOSSIER_SIGNING_GENERATE = EMBEDDED or env_bool("DOSSIER_SIGNING_GENERATE", False)
DOSSIER_TSA_URL = os.environ.get("DOSSIER_TSA_URL", "")
# Printed in every dossier's verification section: where a reader checks the file.
DOSSIER_VERIFY_URL = os.environ.get("DOSSIER_VERIFY_URL", "http://127.0.0.1:8000/verify/")

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not EMBEDDED)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("PORTAL_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
