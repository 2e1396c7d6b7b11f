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
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
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
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",
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
    "django_otp.middleware.OTPMiddleware",
    "portal.middleware.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After messages (its sign-out says why); staff sessions end after PORTAL_STAFF_IDLE_TIMEOUT_MINUTES.
    "portal.middleware.IdleSessionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.middleware.SecurityHeadersMiddleware",
    "portal.middleware.LanguagePreferenceMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
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
                "portal.context_processors.notification_badge",
            ],
            # {{ name|shown }}: vendor text with control and invisible characters made visible.
            # {{ when|when }}: one date format with the time zone (portal_tags).
            "builtins": ["portal.templatetags.portal_text", "portal.templatetags.portal_tags"],
        },
    },
]

# Which kind of process this is: "worker" for `celery worker` and `celery beat` (set by
# portal/celery.py before these settings load, or by the operator) and for operator commands
# (`manage.py seed_demo`, `dossier_render`: they fingerprint and render like workers do), "web"
# for gunicorn and runserver. The database timeouts below are sized for each (issue #11).
_OPERATOR_COMMAND = Path(sys.argv[0]).name == "manage.py" and sys.argv[1:2] != ["runserver"]
PROCESS_KIND = os.environ.get("PORTAL_PROCESS") or ("worker" if _OPERATOR_COMMAND else "web")
if PROCESS_KIND not in {"web", "worker"}:
    raise RuntimeError(f"PORTAL_PROCESS must be web or worker, not {PROCESS_KIND!r}")


def _db_timeout_s(name: str, web: float, worker: float) -> float:
    """A database timeout in seconds: PORTAL_DB_<NAME>_S, else this process kind's default."""
    return float(os.environ.get(f"PORTAL_DB_{name}_S", worker if PROCESS_KIND == "worker" else web))


# PostgreSQL cancels or ends what would otherwise hold rows and the audit log's append lock
# for ever (issue #11: a worker hung inside a transaction held its run's row lock and the
# audit append lock indefinitely). Web / worker defaults, and why:
# - statement 30 s / 300 s: no page query runs for seconds (list pages pin their query
#   counts); a worker's longest statements are a check's findings replaced in bulk and a
#   programme's policy re-evaluation, well under 300 s on 10^5 findings.
# - lock 10 s / 30 s: appends to the audit log and a run's finish hold their locks for
#   milliseconds; a wait of 10 s means a stuck holder, and a web thread (8 per gunicorn
#   process) should answer an error rather than queue behind it. Workers retry, so they may
#   wait longer before giving up.
# - idle in transaction 30 s / 60 s: no code of ours waits on anything but the database
#   inside a transaction (uploads and renders write their files before or after it), so a
#   transaction idle this long belongs to a hung process: the server ends its session and
#   its locks go with it. This is the bound on how long a hung worker stalls the others.
DB_STATEMENT_TIMEOUT_S = _db_timeout_s("STATEMENT_TIMEOUT", web=30, worker=300)
DB_LOCK_TIMEOUT_S = _db_timeout_s("LOCK_TIMEOUT", web=10, worker=30)
DB_IDLE_IN_TRANSACTION_TIMEOUT_S = _db_timeout_s("IDLE_IN_TRANSACTION_TIMEOUT", web=30, worker=60)
# SQLite cannot end another process's transaction; a writer waits this long for the file's
# write lock, then fails with "database is locked" rather than hanging.
SQLITE_BUSY_TIMEOUT_S = float(os.environ.get("PORTAL_SQLITE_BUSY_TIMEOUT_S", "20"))

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
                "timeout": SQLITE_BUSY_TIMEOUT_S,
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
    # libpq's `options`: server settings for every session this process opens.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = " ".join([
        f"-c statement_timeout={int(DB_STATEMENT_TIMEOUT_S * 1000)}",
        f"-c lock_timeout={int(DB_LOCK_TIMEOUT_S * 1000)}",
        f"-c idle_in_transaction_session_timeout={int(DB_IDLE_IN_TRANSACTION_TIMEOUT_S * 1000)}",
    ])
    if os.environ.get("PORTAL_TEST_DATABASE_NAME"):
        DATABASES["default"]["TEST"] = {"NAME": os.environ["PORTAL_TEST_DATABASE_NAME"]}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out account or address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# Sign-in throttling (django-axes): after PORTAL_SIGNIN_FAILURE_LIMIT failed sign-ins for one
# account, or from one address, further attempts for that account or from that address are
# refused for PORTAL_SIGNIN_COOLOFF_MINUTES, whatever the password; the lockout page says so
# without saying whether the account exists. Each lockout is an audit event (portal/signin.py);
# an administrator unlocks in the admin (Axes > Access attempts: delete) or with
# `manage.py axes_reset_username NAME` / `axes_reset_ip ADDRESS`, which is audited too.
AXES_FAILURE_LIMIT = int(os.environ.get("PORTAL_SIGNIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("PORTAL_SIGNIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "portal.signin.lockout_response"
AXES_VERBOSE = False
# Behind a proxy, the client address comes from this header (e.g. HTTP_X_FORWARDED_FOR); the
# proxy must overwrite it, or a client could choose its own address.
AXES_IPWARE_META_PRECEDENCE_ORDER = [h for h in os.environ.get("PORTAL_CLIENT_IP_HEADERS", "REMOTE_ADDR").split(",") if h]

# Second factor (portal/second_factor.py, django-otp): ministry staff must have one; anyone who set
# one up must use it; projects adds "a programme requires it of its vendors". Off only for tests
# that sign in without the form (tests/conftest.py); never turn it off in production.
PORTAL_SECOND_FACTOR_ENFORCED = env_bool("PORTAL_SECOND_FACTOR_ENFORCED", True)
PORTAL_SECOND_FACTOR_RULES = ["projects.selectors.user_second_factor_required_by_programme"]
OTP_TOTP_ISSUER = os.environ.get("PORTAL_OTP_ISSUER", "Sovereign AI governance portal")
# `manage.py demo_otp NAME` prints a demo staff login's current code: the embedded demo only,
# unless an operator running the demo on PostgreSQL turns it on.
PORTAL_DEMO_COMMANDS = env_bool("PORTAL_DEMO_COMMANDS", EMBEDDED)
# WebAuthn passkeys (django-otp-webauthn), a second factor beside the authenticator app. The
# relying-party ID is the bare host name passkeys are bound to (never an IP address: the WebAuthn
# spec and browsers refuse them, so the demo is opened at http://localhost:8000, a secure context,
# not at 127.0.0.1); the origins are the exact scheme://host[:port] the portal is served at.
# Changing the RP ID later orphans every registered passkey.
OTP_WEBAUTHN_RP_ID = os.environ.get("PORTAL_WEBAUTHN_RP_ID", "localhost")
OTP_WEBAUTHN_RP_NAME = OTP_TOTP_ISSUER
OTP_WEBAUTHN_ALLOWED_ORIGINS = [o for o in os.environ.get(
    "PORTAL_WEBAUTHN_ORIGINS", "http://localhost:8000").split(",") if o]
# Passkeys here are a second factor only: signing in still starts with the password (and its
# lockout); the library's passwordless login is off.
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False

# Idle sessions (portal.middleware.IdleSessionMiddleware): a session with no request for this
# many minutes is signed out at its next request. Staff 30 (an unlocked office screen stops
# acting for them); vendors a working day (their uploads run long and every chunk is a request);
# 0 leaves only SESSION_COOKIE_AGE. API tokens have no session and are not affected.
PORTAL_STAFF_IDLE_TIMEOUT_MINUTES = float(os.environ.get("PORTAL_STAFF_IDLE_TIMEOUT_MINUTES", "30"))
PORTAL_VENDOR_IDLE_TIMEOUT_MINUTES = float(os.environ.get("PORTAL_VENDOR_IDLE_TIMEOUT_MINUTES", "480"))

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
# The operating ministry, named in the government-site identifier banner of every page (KRDS
# "운영기관 식별자") and the footer, in English and Korean. The default is the demo's fictional
# ministry (compliance/management/commands/seed_demo.py).
PORTAL_OPERATOR_NAME = {
    "en": os.environ.get("PORTAL_OPERATOR_NAME", "Ministry of Digital Sovereignty (demo)"),
    "ko": os.environ.get("PORTAL_OPERATOR_NAME_KO", "디지털주권부 (데모)"),
}
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

# Static files get content-hashed names (portal.a1b2c3d4e5f6.css) from collectstatic's manifest,
# so WhiteNoise serves them, the KRDS stylesheet and the 1.8 MB of PretendardGOV fonts with a
# one-year immutable cache and a page never mixes an old stylesheet with new markup. Rendering a
# page then needs the manifest: `make setup` runs collectstatic. The test suite renders pages
# without collectstatic, so under pytest (or PORTAL_STATIC_MANIFEST=0) the storage is the plain
# one: the same files under their own names.
# The embedded default hashes without compressing: WhiteNoise's gzip + Brotli pass over the admin,
# Swagger UI and KRDS files took 437 s of `collectstatic` on this 2-core machine under load
# (6 Dec 2026) against seconds for hashing alone; a production deployment compresses (below).
STATIC_MANIFEST = env_bool("PORTAL_STATIC_MANIFEST", "pytest" not in sys.modules)
_STATICFILES_STORAGE = {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage" if STATIC_MANIFEST
                        else "django.contrib.staticfiles.storage.StaticFilesStorage"}

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
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage" if STATIC_MANIFEST
                        else "whitenoise.storage.CompressedStaticFilesStorage"},
    }
else:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": _STATICFILES_STORAGE,
    }

# https://www.django-rest-framework.org/api-guide/settings/
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.tokens.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "portal.drf.PagePagination",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "portal.drf.FormatParameterNegotiation",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "portal.filters.ScopedIdFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    # drf-spectacular's, documenting the refusals (400/401/403/404) too (portal/schema.py).
    "DEFAULT_SCHEMA_CLASS": "portal.schema.PortalAutoSchema",
    "EXCEPTION_HANDLER": "portal.api.exception_handler",
}
# API tokens (django-rest-knox): made by their owners at /account/tokens/ or POST /api/tokens/,
# stored as digests, sent as "Authorization: Token <secret>".
KNOX_TOKEN_MODEL = "portal.ApiToken"
# knox's own migrations create its (swapped-out) AuthToken table anyway, with a foreign key to
# auth_user that Django's flush does not know about (PostgreSQL then refuses to truncate users).
# Our ApiToken replaces it, so knox's migrations are not run and that table never exists.
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {"TOKEN_MODEL": "portal.ApiToken", "TOKEN_TTL": timedelta(days=30), "AUTO_REFRESH": False,
             "AUTH_HEADER_PREFIX": "Token", "TOKEN_PREFIX": "gp_"}

SPECTACULAR_SETTINGS = {
    "TITLE": "Sovereign-AI governance portal API",
    "DESCRIPTION": "Programmes, funded projects, vendor submissions, artifacts (chunked, resumable uploads), "
    "declarations, check runs, findings and reviewer decisions. Object permissions are the same as the pages: "
    "an object you may not see answers 404.\n\n"
    "**Authentication.** Sign in to the portal and open *API tokens* (`/account/tokens/`), or `POST /api/tokens/` "
    "with your session, giving a name and an expiry of 7, 30, 90 or 365 days. The secret is shown once; send it as "
    "`Authorization: Token <secret>`. Tokens are stored hashed, show when they were last used, and can be revoked "
    "at any time (`DELETE /api/tokens/{token_key}/`).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Several models have a "status"; the submission's gets a stable name of its own.
    "ENUM_NAME_OVERRIDES": {"SubmissionStatusEnum": "projects.models.Submission.Status",
                            "ArtifactKindEnum": "projects.models.Artifact.Kind",
                            "ArtifactStatusEnum": "projects.models.Artifact.Status",
                            "NotificationKindEnum": "portal.models.Notification.Kind",
                            "ChallengeStatusEnum": "compliance.models.Challenge.Status"},
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
# Publishing fails fast when the broker is down or hung (issue #11: a web request waited on
# Redis and answered 500 after the submission had committed). The CheckRun row is the outbox:
# a run whose send failed stays queued with no `sent_at`, and the reconciler sends it once the
# broker is back. Three tries 0.2 s apart (Celery's default spacing) cost under a second when
# Redis refuses; the 2 s connect and 5 s socket timeouts bound a Redis that accepts and never
# answers (without them a stopped Redis held the request for ever, measured on kombu 5.7).
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2,
                                    "interval_max": 0.2}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
_PUBLISH_FAIL_FAST = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
# Redis: redeliver unacked tasks after 2 h; longer than our longest hard time limit (1 h).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 7200, "socket_connect_timeout": 2, "socket_timeout": 5,
                                   **_PUBLISH_FAIL_FAST}
if CELERY_BROKER_URL.startswith("sqla+"):
    # kombu hands the rest to SQLAlchemy's create_engine; the transport polls every second.
    CELERY_BROKER_TRANSPORT_OPTIONS = dict(_PUBLISH_FAIL_FAST)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# The reconciler (compliance.reconcile_check_runs) runs from beat; the embedded default
# (scripts/run.py) starts beat inside the control worker so nothing else needs to run.
RECONCILE_INTERVAL_S = float(os.environ.get("PORTAL_RECONCILE_INTERVAL_S", "30"))
# A signed audit checkpoint (portal.audit_checkpoint) at most this often, skipped when no
# event was added: hourly bounds what a database-level attacker can cut unnoticed to one hour.
AUDIT_CHECKPOINT_INTERVAL_S = float(os.environ.get("PORTAL_AUDIT_CHECKPOINT_INTERVAL_S", "3600"))
# The reconciler has a queue of its own, `control`, consumed by a worker that runs nothing else
# (README, "Many workers on many hosts"): on the shared `light` queue it ran 37-43 s late
# behind licence scans (issue #11). A reconcile message older than one interval is dropped
# unrun (`expires`), so a control worker that was away never works through a backlog of them.
CONTROL_QUEUE = "control"
# Notifications (portal.notifications): an immediate e-mail is a short SMTP exchange, so it
# rides the default `light` queue beside intake (CELERY_TASK_DEFAULT_QUEUE); the daily digest
# and the milestone reminders come from beat and run on `control`, like the audit checkpoint.
NOTIFY_DIGEST_HOUR_UTC = int(os.environ.get("PORTAL_NOTIFY_DIGEST_HOUR_UTC", "23"))  # 08:00 in Seoul
NOTIFY_MILESTONE_HOUR_UTC = int(os.environ.get("PORTAL_NOTIFY_MILESTONE_HOUR_UTC", "22"))  # 07:00 in Seoul
CELERY_TASK_ROUTES = {"compliance.reconcile_check_runs": {"queue": CONTROL_QUEUE},
                      "portal.audit_checkpoint": {"queue": CONTROL_QUEUE},
                      "portal.notification_email": {"queue": CELERY_TASK_DEFAULT_QUEUE},
                      "portal.notification_digest": {"queue": CONTROL_QUEUE},
                      "projects.milestone_reminders": {"queue": CONTROL_QUEUE}}
CELERY_BEAT_SCHEDULE = {
    "reconcile-check-runs": {"task": "compliance.reconcile_check_runs", "schedule": RECONCILE_INTERVAL_S,
                             "options": {"queue": CONTROL_QUEUE, "expires": RECONCILE_INTERVAL_S}},
    "audit-checkpoint": {"task": "portal.audit_checkpoint", "schedule": AUDIT_CHECKPOINT_INTERVAL_S,
                         "options": {"queue": CONTROL_QUEUE}},
    # Daily; a missed day is caught up by the next run (both tasks work from the rows, not the date).
    "notification-digest": {"task": "portal.notification_digest",
                            "schedule": crontab(hour=NOTIFY_DIGEST_HOUR_UTC, minute=0),
                            "options": {"queue": CONTROL_QUEUE}},
    "milestone-reminders": {"task": "projects.milestone_reminders",
                            "schedule": crontab(hour=NOTIFY_MILESTONE_HOUR_UTC, minute=0),
                            "options": {"queue": CONTROL_QUEUE}},
    # Public challenges: the vendor reminded before the reply is due, officers told when overdue.
    "challenge-reply-reminders": {"task": "compliance.challenge_reply_reminders",
                                  "schedule": crontab(hour=NOTIFY_MILESTONE_HOUR_UTC, minute=5),
                                  "options": {"queue": CONTROL_QUEUE}},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# A running check renews its lease at every progress report; a run whose lease
# lapsed (its worker died) is requeued by the reconciler.
CHECK_LEASE_S = float(os.environ.get("PORTAL_CHECK_LEASE_S", "120"))
# Issue #16 (named as the issue names them). Per-file results (licences, copied code) are kept by
# content hash and engine version in the database (compliance.FileResult) and reused by every
# later scan; "0" turns every result cache off: the per-file caches and the reuse of an earlier
# version's check results alike (the benchmark's "caching off" baseline).
PORTAL_RESULT_CACHE = env_bool("PORTAL_RESULT_CACHE", True)
# Processes one licence or copied-code check splits its files across (forked from the worker
# child, sharing its loaded tables; compliance.engine.parallel); 1 scans in the worker itself.
PORTAL_SCAN_PROCESSES = max(1, int(os.environ.get("PORTAL_SCAN_PROCESSES", "0") or 0) or min(2, os.cpu_count() or 1))
# Scanning processes on the whole host, across every check of every worker (one exclusive flock a
# process, on files in PORTAL_SCAN_SLOTS_DIR, which every worker of the host must share): a licence
# and a copied-code check at once on a 2-core worker ran 4 scanners that scanned no faster than 2
# and each copied the licence index pages it touched. Default: the host's cores; 0 turns the cap off.
PORTAL_SCAN_SLOTS = max(0, int(os.environ.get("PORTAL_SCAN_SLOTS", str(os.cpu_count() or 1))))
PORTAL_SCAN_SLOTS_DIR = Path(os.environ.get("PORTAL_SCAN_SLOTS_DIR", VAR_DIR / "scan-slots"))
# A scanning process whose private memory (pages it allocated or copied from the shared licence
# index by writing their reference counts) passes this many MiB finishes its chunk and is replaced
# by a fresh fork: its memory stays bounded whatever the tree's size. 0: never replaced. 250, not the
# 150 first measured: each replacement forks a 1.3 GB process (~138 ms, then its pages copied again),
# which cost +20 % CPU at 150 MiB on 5,000 files; 250 bounds two scanners to ~0.5 GB private.
PORTAL_SCAN_RECYCLE_MB = float(os.environ.get("PORTAL_SCAN_RECYCLE_MB", "200"))
# A worker's pool process whose private memory (what it allocated and kept between tasks, not
# the licence index it shares with the worker) passes this many MiB after a task is replaced by
# a fresh fork before it takes the next one (compliance.receivers.pool_recycle_by_private_memory).
# 0: never replaced. A fork of the worker costs about 0.1 s; what the process had cached is rebuilt.
PORTAL_POOL_RECYCLE_MB = float(os.environ.get("PORTAL_POOL_RECYCLE_MB", "160"))
# Ranged GETs a reader of weights in object storage keeps in flight (projects.storage.StoredRangeReader.read_many);
# 1 sends them one at a time.
PORTAL_S3_READ_THREADS = max(1, int(os.environ.get("PORTAL_S3_READ_THREADS", "8")))
# A worker that serves the queue licence checks run on (light) loads ScanCode's licence index (about
# 1.2 GB) in its main process before forking its pool, so the children and their scan processes
# share it copy-on-write: two children measured 1.58 GB PSS together instead of 2.34 GB, each
# loading its own. Costs the worker 6-30 s before "ready". 0 loads it in each child on first use.
PORTAL_PRELOAD_LICENCE_INDEX = env_bool("PORTAL_PRELOAD_LICENCE_INDEX", True)
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

# --- Notifications and e-mail (portal.notifications) ---------------------------------
# E-mails link to pages with absolute URLs built on this (no request to take the host from).
PORTAL_BASE_URL = os.environ.get("PORTAL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Milestones due within this many days are announced to the vendor and the officers.
NOTIFY_MILESTONE_DAYS = int(os.environ.get("PORTAL_NOTIFY_MILESTONE_DAYS", "7"))
# The demo prints e-mails on the worker's console; production sets the SMTP backend and
# EMAIL_HOST & co (README, "Configuration"). The file backend writes one file per message.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
# A mail server that accepts the connection and never answers must not hold a worker for ever.
EMAIL_TIMEOUT = float(os.environ.get("EMAIL_TIMEOUT", "20"))
if os.environ.get("EMAIL_FILE_PATH"):
    EMAIL_FILE_PATH = os.environ["EMAIL_FILE_PATH"]
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "portal@localhost")

# --- Transport and browser security (README, "Configuration"; THREAT_MODEL.md) -----------
# Production (a DATABASE_URL is set) defaults to HTTPS only: HSTS for a year on every subdomain,
# plain HTTP redirected, secure cookies. The embedded demo serves plain HTTP on loopback, so
# there the defaults are off. Each setting is an environment variable; `manage.py check --deploy`
# is clean with the production defaults (tests/portal/test_deploy_settings.py).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not EMBEDDED)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not EMBEDDED)
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "0" if EMBEDDED else str(365 * 24 * 3600)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", not EMBEDDED)
# The header only allows a browser preload list to take the domain; enrolment is a separate,
# deliberate step at hstspreload.org.
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", not EMBEDDED)
# Behind a TLS-terminating proxy: "HTTP_X_FORWARDED_PROTO,https" (only when the proxy sets it).
if os.environ.get("DJANGO_SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = tuple(os.environ["DJANGO_SECURE_PROXY_SSL_HEADER"].split(",", 1))
# Health probes and the loopback demo may stay on HTTP when the operator lists them.
SECURE_REDIRECT_EXEMPT = [p for p in os.environ.get("DJANGO_SECURE_REDIRECT_EXEMPT", "").split(",") if p]
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# Throttle counters (anonymous dossier verification) live in a cache every web process shares:
# files under var/ on one host by default, Redis for many hosts (PORTAL_CACHE_URL=redis://host:6379/2;
# use a database the broker does not).
if os.environ.get("PORTAL_CACHE_URL", "").startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": os.environ["PORTAL_CACHE_URL"]}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(VAR_DIR / "cache")}}
# Forgotten passwords (portal/password_reset.py): links asked for one e-mail address, and from
# one client address, in Django's cache; over budget the form answers 429 whether or not the
# address belongs to anyone. A link works once and for PORTAL_PASSWORD_RESET_TIMEOUT_HOURS.
PORTAL_PASSWORD_RESET_RATE_PER_ACCOUNT = os.environ.get("PORTAL_PASSWORD_RESET_RATE_PER_ACCOUNT", "3/hour")
PORTAL_PASSWORD_RESET_RATE_PER_CLIENT = os.environ.get("PORTAL_PASSWORD_RESET_RATE_PER_CLIENT", "10/hour")
# Django's own default (3 days), which vendor invitations (the same link) also rely on.
PASSWORD_RESET_TIMEOUT = int(float(os.environ.get("PORTAL_PASSWORD_RESET_TIMEOUT_HOURS", "72")) * 3600)
# Anonymous uploads to /verify/ and /api/dossiers/verify/ per client address; verification by
# hash costs a database lookup and is not throttled.
PORTAL_VERIFY_UPLOAD_RATE = os.environ.get("PORTAL_VERIFY_UPLOAD_RATE", "30/hour")
# Anonymous public challenges (issue #15) per client address: each one sends an e-mail and
# lands in an officer's triage list, so the budget is small.
PORTAL_CHALLENGE_RATE = os.environ.get("PORTAL_CHALLENGE_RATE", "5/hour")
# Days the vendor has to reply to an accepted challenge, unless the programme's policy sets its own
# (ProgrammePolicy.challenge_reply_days).
PORTAL_CHALLENGE_REPLY_DAYS = int(os.environ.get("PORTAL_CHALLENGE_REPLY_DAYS", "14"))
# How long the e-mailed confirmation link of a challenge stays valid (seconds).
PORTAL_CHALLENGE_CONFIRM_SECONDS = int(os.environ.get("PORTAL_CHALLENGE_CONFIRM_SECONDS", str(3 * 24 * 3600)))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("PORTAL_LOG_LEVEL", "INFO")},
    # django-axes logs every sign-in at INFO; lockouts (WARNING) and the audit events are what matter.
    "loggers": {"django.db.backends": {"level": "INFO"}, "axes": {"level": "WARNING"}},
}
