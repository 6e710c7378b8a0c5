"""Settings for certmgr, read from the environment with django-environ.

Everything has an embedded default so that `make run` needs no server and no configuration:
SQLite under var/, a secret key and an encryption key generated into var/ on first start,
Celery on kombu's filesystem transport. Production sets CERTMGR_PRODUCTION=true (HTTPS only,
HSTS, secure cookies; no generated secret), DATABASE_URL, CELERY_BROKER_URL, SECRET_KEY and
CERTMGR_ENCRYPTION_KEYS (README, "Production"; tests/certmgr/test_production.py).
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env("CERTMGR_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _generated_secret(filename: str, make) -> str:
    """Read a secret kept in var/, creating it (mode 0600) on first start."""
    path = VAR_DIR / filename
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(make())
    return path.read_text().strip()


# The production profile (README, "Production"): HTTPS only, secure cookies, HSTS, and no
# generated secret: a missing SECRET_KEY or CERTMGR_ENCRYPTION_KEYS stops the process at start.
CERTMGR_PRODUCTION = env.bool("CERTMGR_PRODUCTION", default=False)
if CERTMGR_PRODUCTION:
    _missing = [
        name for name in ("SECRET_KEY", "CERTMGR_ENCRYPTION_KEYS") if not env.str(name, default="")
    ]
    if _missing:
        raise ImproperlyConfigured(
            f"CERTMGR_PRODUCTION is on but {' and '.join(_missing)} "
            f"{'is' if len(_missing) == 1 else 'are'} not set: production never uses a "
            "generated secret (README, Production)."
        )
    if env.bool("DEBUG", default=False):
        raise ImproperlyConfigured("CERTMGR_PRODUCTION is on: DEBUG must be off.")

SECRET_KEY = env("SECRET_KEY", default=None) or _generated_secret(
    "secret_key", lambda: secrets.token_urlsafe(50)
)
DEBUG = env.bool("DEBUG", default=False)

# The back office answers on these hosts only (README, "Using it": Hosts).
CERTMGR_BACKOFFICE_HOSTS = env.list(
    "CERTMGR_BACKOFFICE_HOSTS", default=["localhost", "127.0.0.1", "[::1]"]
)
# No sales channel may claim these domains or any name under them, nor the back-office hosts
# (README, "Configuration").
CERTMGR_RESERVED_DOMAINS = env.list("CERTMGR_RESERVED_DOMAINS", default=[])
# Host checks are done by saleschannels.middleware.HostRoutingMiddleware, which also lets
# Let's Encrypt and Apple reach /.well-known/ on every sales channel's own hostname.
ALLOWED_HOSTS = ["*"]

# Private keys are encrypted at rest with MultiFernet: the first key encrypts, all decrypt.
CERTMGR_ENCRYPTION_KEYS = env.list("CERTMGR_ENCRYPTION_KEYS", default=[]) or [
    _generated_secret("encryption.key", lambda: Fernet.generate_key().decode())
]

# The TLS edge (nginx) reads <hostname>.crt and <hostname>.key from this folder.
CERTMGR_EDGE_DIR = Path(env("CERTMGR_EDGE_DIR", default=str(VAR_DIR / "edge")))
# host:port the probe connects to instead of resolving each hostname (staging, tests).
CERTMGR_PROBE_ADDRESS = env("CERTMGR_PROBE_ADDRESS", default="")
CERTMGR_PROBE_TIMEOUT = env.float("CERTMGR_PROBE_TIMEOUT", default=5.0)

# Onboarding a hostname (README, "Onboarding a hostname"): where a shop's hostname must point
# before a certificate is ordered for it, and the DNS servers asked about it.
# The edge's public addresses (IPv4/IPv6); empty: the DNS check only requires an address.
CERTMGR_EDGE_ADDRESSES = env.list("CERTMGR_EDGE_ADDRESSES", default=[])
# A name shops may CNAME to instead (e.g. edge.platform.example); empty: none offered.
CERTMGR_EDGE_CNAME = env("CERTMGR_EDGE_CNAME", default="").rstrip(".").lower()
# DNS servers to ask, "address" or "address:port" ("[v6]:port"); empty: the system resolver.
CERTMGR_DNS_RESOLVERS = env.list("CERTMGR_DNS_RESOLVERS", default=[])
CERTMGR_DNS_TIMEOUT = env.float("CERTMGR_DNS_TIMEOUT", default=5.0)
# Seconds between re-checks of an unverified hostname at first; the interval doubles up to a day.
CERTMGR_VERIFY_INTERVAL = env.float("CERTMGR_VERIFY_INTERVAL", default=300.0)

# ACME (managed certificates). Let's Encrypt's staging CA unless told otherwise.
ACME_DIRECTORY_URL = env(
    "ACME_DIRECTORY_URL", default="https://acme-staging-v02.api.letsencrypt.org/directory"
)
# A CA bundle to trust the ACME server with (a test CA such as Pebble); empty: system trust.
ACME_CA_BUNDLE = env("ACME_CA_BUNDLE", default="")
ACME_CONTACT_EMAIL = env("ACME_CONTACT_EMAIL", default="")
ACME_EAB_KID = env("ACME_EAB_KID", default="")
ACME_EAB_HMAC_KEY = env("ACME_EAB_HMAC_KEY", default="")
ACME_PROFILE = env("ACME_PROFILE", default="")  # e.g. Let's Encrypt's "tlsserver", "shortlived"
ACME_KEY_TYPE = env("ACME_KEY_TYPE", default="ec256")  # or "rsa2048"
# Keep a managed certificate's key across its renewals (certbot's --reuse-key), so that the
# edge swaps only the certificate file: README, "Edge and probe". Off: a new key each time.
ACME_REUSE_KEY = env.bool("ACME_REUSE_KEY", default=True)
ACME_ORDER_TIMEOUT = env.float("ACME_ORDER_TIMEOUT", default=120.0)
# The CA's CAA identities (RFC 8659 issuer domain names) that the pre-flight CAA check looks for.
ACME_CAA_IDENTITIES = env.list("ACME_CAA_IDENTITIES", default=["letsencrypt.org"])
# The port the CA fetches HTTP-01 tokens on (80; tests point it elsewhere), and the port the
# HTTP ownership token is fetched on.
ACME_HTTP01_PORT = env.int("ACME_HTTP01_PORT", default=80)
# The only port an https:// redirect of an HTTP-01 fetch may lead to (443, as the CA allows;
# tests point it elsewhere): the pre-flight self-check and the HTTP ownership token follow it.
ACME_HTTP01_TLS_PORT = env.int("ACME_HTTP01_TLS_PORT", default=443)
# The CA's rate limits, kept as budgets (README, "Rate limits (the CA's budgets)";
# acme_client/limits.py): "N/W" (W in s, m, h or d) or "off"; Let's Encrypt's by default.
# Read where used, so that `manage.py check` names an unreadable one (certmgr.E003).
ACME_RATE_LIMIT_NEW_ORDERS = env("ACME_RATE_LIMIT_NEW_ORDERS", default="300/3h")
ACME_RATE_LIMIT_REGISTERED_DOMAIN = env("ACME_RATE_LIMIT_REGISTERED_DOMAIN", default="50/7d")
ACME_RATE_LIMIT_DUPLICATE = env("ACME_RATE_LIMIT_DUPLICATE", default="5/7d")
ACME_RATE_LIMIT_FAILED_VALIDATIONS = env("ACME_RATE_LIMIT_FAILED_VALIDATIONS", default="5/1h")
# Seconds added to each window: our clock reads "now" a little before the CA receives the order.
ACME_RATE_LIMIT_MARGIN = env.float("ACME_RATE_LIMIT_MARGIN", default=10.0)
# How often Celery beat looks for managed certificates that are due.
CERTMGR_RENEW_INTERVAL = env.float("CERTMGR_RENEW_INTERVAL", default=300.0)

# Bearer token Prometheus sends to GET /metrics; empty: the endpoint is off (404).
CERTMGR_METRICS_TOKEN = env("CERTMGR_METRICS_TOKEN", default="")

CERTMGR_WARNING_DAYS = env.int("CERTMGR_WARNING_DAYS", default=30)
CERTMGR_CRITICAL_DAYS = env.int("CERTMGR_CRITICAL_DAYS", default=7)

# Expiry monitoring (monitoring/): warnings this many days before expiry, or at
# 1/2 and 1/4 of the lifetime for certificates living under CERTMGR_SHORT_LIVED_DAYS days.
CERTMGR_NOTIFY_DAYS = env.list("CERTMGR_NOTIFY_DAYS", cast=int, default=[30, 14, 7, 3, 1, 0])
CERTMGR_SHORT_LIVED_DAYS = env.int("CERTMGR_SHORT_LIVED_DAYS", default=60)
# Webhooks to loopback, private or link-local addresses are refused (server-side request
# forgery) unless this is on: a chat server on the platform's own network, tests.
CERTMGR_WEBHOOK_ALLOW_PRIVATE = env.bool("CERTMGR_WEBHOOK_ALLOW_PRIVATE", default=False)
# Links in e-mails and webhooks point here.
CERTMGR_BASE_URL = env("CERTMGR_BASE_URL", default="http://127.0.0.1:8000")
# Seconds between two check_expiry runs and two probes of every channel (Celery beat); the
# staff summary goes out daily at this hour (CELERY_TIMEZONE, UTC).
CERTMGR_CHECK_EXPIRY_INTERVAL = env.float("CERTMGR_CHECK_EXPIRY_INTERVAL", default=3600.0)
CERTMGR_PROBE_INTERVAL = env.float("CERTMGR_PROBE_INTERVAL", default=4 * 3600.0)
CERTMGR_STAFF_SUMMARY_HOUR = env.int("CERTMGR_STAFF_SUMMARY_HOUR", default=7)

# E-mail: printed on the console by default (`make run`); SMTP in production, e.g.
# EMAIL_URL=smtp+tls://user:password@mail.example.com:587. Unset parts keep Django's defaults.
vars().update(
    {
        name: value
        for name, value in env.email_url("EMAIL_URL", default="consolemail://").items()
        if value is not None
    }
)
# Seconds an SMTP connection may wait on the mail server (Django's default waits for ever,
# which would hold a worker, or the page sending a test e-mail, on a mail server that hangs).
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=10.0)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="certmgr <certmgr@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Bottom to top: each app imports only from those above it in this list (README, "Layout").
    "core",
    "institutions",
    "certificates",
    "saleschannels",
    "onboarding",
    "acme_client",
    "monitoring",
    "api",
    "certmgr",
]

MIDDLEWARE = [
    "saleschannels.middleware.HostRoutingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before any CSRF check or view reads the body (certmgr/upload_limits.py).
    "certmgr.upload_limits.RequestBodyLimitMiddleware",
    # Then, before anything queries with what the client sent (certmgr/request_checks.py).
    "certmgr.request_checks.NulCharacterMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "monitoring.middleware.CertificateAlertMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "certmgr.urls"

# The automation API (README, "API"): token authentication only (api/authentication.py; no
# session, so no CSRF question), a budget per token, RFC 9457 problems, cursor pagination.
CERTMGR_API_THROTTLE_RATE = env("CERTMGR_API_THROTTLE_RATE", default="600/min")
CERTMGR_API_TOKEN_DAYS_MAX = env.int("CERTMGR_API_TOKEN_DAYS_MAX", default=365)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.TokenRateThrottle"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.problems.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "certmgr API",
    "DESCRIPTION": 'Sales channels, certificates and their status (README, "API").',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.problem_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ChannelStatusEnum": "saleschannels.models.ChannelStatus",
        "SslModeEnum": "saleschannels.models.SalesChannel.SslMode",
        "CertificateStatusEnum": "certificates.models.CertificateStatus",
        "CertificateKindEnum": "certificates.models.Certificate.Kind",
        "CertificateRequestKindEnum": "certificates.models.CertificateRequest.Kind",
    },
}

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
                "acme_client.context_processors.acme_ca",
                "monitoring.context_processors.certificate_alerts",
            ],
            # Hostnames are shown through these filters on every page, partials included
            # (README, "Using it": hostnames and IDNs), so no template has to load them.
            "builtins": ["core.templatetags.hostnames"],
        },
    },
]

WSGI_APPLICATION = "certmgr.wsgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'certmgr.sqlite3'}"),
}

# The cache holds each API token's request count (README, "API") and the CA's profiles for a
# few minutes. In memory by default: one count per process. Several web processes share one
# count through a shared cache, e.g. CACHE_URL=redis://redis:6379/1 (Django's own Redis
# backend: https://docs.djangoproject.com/en/5.2/topics/cache/#redis).
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker share the SQLite file: WAL lets readers go on while one
    # writes, IMMEDIATE takes the write lock at the start of a transaction (no deadlock on
    # upgrade), and a writer waits up to 20 s for the other one. synchronous=NORMAL is
    # SQLite's advice for WAL: a commit is not flushed to disk on its own (checkpoints are), so
    # a power cut may lose the last transactions but never corrupts the file; a crashed process
    # loses nothing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=20,
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        transaction_mode="IMMEDIATE",
    )
    # Tests with a real worker process share the test database with it: a file, not memory
    # (one per test run, so that two runs side by side do not trample each other).
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-certmgr-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
# Files answered at the site's root by WhiteNoise: /favicon.ico, which browsers ask for
# whatever the page links (the pages link static/favicon.svg). A same-origin image, as the
# Content-Security-Policy's img-src allows (README, "Production").
WHITENOISE_ROOT = BASE_DIR / "static" / "root"

# Uploaded certificate files are small: the upload forms refuse a file over 64 KiB
# (certificates.bundle.MAX_FILE_BYTES) on its own field. A request body over
# CERTMGR_REQUEST_BODY_MAX_BYTES is answered 413 before anything reads it
# (certmgr.upload_limits); below it, uploaded files stay in memory (never a temporary file)
# and the other fields are bounded by DATA_UPLOAD_MAX_MEMORY_SIZE. The edge proxy's own
# default (nginx client_max_body_size) is the same 1 MiB.
CERTMGR_REQUEST_BODY_MAX_BYTES = 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = CERTMGR_REQUEST_BODY_MAX_BYTES
DATA_UPLOAD_MAX_MEMORY_SIZE = CERTMGR_REQUEST_BODY_MAX_BYTES

# Browser hardening, in every profile.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Links that leave the back office do not carry its URLs (certificate ids, filters, searches).
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): scripts and styles come from static files only; the
# templates carry no inline script, style or event handler (tests/certmgr/test_security_headers.py
# and tests/browser/test_csp.py hold them to it).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# The web processes sit behind a reverse proxy that terminates TLS, overwrites
# X-Forwarded-Proto and appends the client's address to X-Forwarded-For (deploy/nginx.conf does
# both). Only then may those headers be believed: a client reaching gunicorn directly could
# forge them.
CERTMGR_BEHIND_PROXY = env.bool("CERTMGR_BEHIND_PROXY", default=False)
if CERTMGR_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

if CERTMGR_PRODUCTION:
    SECURE_SSL_REDIRECT = True
    # Plain HTTP must keep working for what the CA, Apple and the orchestrator fetch: Let's
    # Encrypt's HTTP-01 validation starts on port 80 before a shop host has any certificate.
    # (Patterns match the path without its leading slash.)
    SECURE_REDIRECT_EXEMPT = [
        r"^\.well-known/acme-challenge/",
        r"^\.well-known/apple-developer-merchantid-domain-association$",
        r"^healthz$",
    ]
    # One year; subdomains of the back-office host are certmgr's too. HSTS is sent on the
    # back office only: saleschannels.middleware strips it from answers on shop hostnames,
    # whose owners decide their own policy.
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Content-hashed file names, compressed copies, cached for ever by browsers (WhiteNoise);
    # needs `manage.py collectstatic`, which the Dockerfile runs.
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
SILENCED_SYSTEM_CHECKS = [
    # security.W021 asks for SECURE_HSTS_PRELOAD. The preload list takes whole registrable
    # domains (example.com and every subdomain), which is the domain owner's decision, not the
    # back office's; certmgr does not send `preload`.
    "security.W021",
]

# Login throttling (django-axes; certmgr/login_throttle.py): 5 failed logins for one username
# from one client address lock that pair out for 15 minutes (every attempt during the lock-out,
# the right password too, is refused and restarts the wait). Username and address together:
# locking a username alone would let anyone lock a colleague out. Besides, 30 failures from one
# address (CERTMGR_LOGIN_ADDRESS_FAILURE_LIMIT), whatever the usernames, lock that address out
# for everyone: high enough for an office behind one NAT, low enough that one address cannot
# try a password across many accounts. The address is the proxy's X-Forwarded-For entry behind
# CERTMGR_BEHIND_PROXY; an IPv6 client counts as its /64.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
CERTMGR_LOGIN_FAILURE_LIMIT = 5
CERTMGR_LOGIN_ADDRESS_FAILURE_LIMIT = env.int("CERTMGR_LOGIN_ADDRESS_FAILURE_LIMIT", default=30)
AXES_FAILURE_LIMIT = "certmgr.login_throttle.failure_limit"
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_LOCKOUT_CALLABLE = "certmgr.login_throttle.lockout_response"
AXES_CLIENT_IP_CALLABLE = "certmgr.login_throttle.client_ip_address"

# Celery: an embedded filesystem broker by default, Redis in production.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
_visibility_timeout = env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A task whose worker died unacknowledged is delivered again after this many seconds
    # (Redis); workers look for such tasks every few seconds, not every 100 s.
    "visibility_timeout": _visibility_timeout,
    "unacked_restore_interval": max(1, min(10, _visibility_timeout)),
    "unacked_restore_throttle": 1,
}
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("out", "processed"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        data_folder_in=str(_broker_dir / "out"),
        data_folder_out=str(_broker_dir / "out"),
        processed_folder=str(_broker_dir / "processed"),
    )
# Two queues: "celery" for everything but issuance, "acme" for the ACME orders, which wait on
# the CA and the network, not the CPU. `manage.py acme_worker` consumes "acme" with a thread
# pool of CERTMGR_ACME_CONCURRENCY orders at once in one process (README, "Workers and
# concurrency"); a worker started without --queues (tests, a one-process setup) takes both.
CERTMGR_ACME_CONCURRENCY = env.int("CERTMGR_ACME_CONCURRENCY", default=16)
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (
    Queue("celery", routing_key="celery"),
    Queue("acme", routing_key="acme"),
)
CELERY_TASK_ROUTES = {
    "acme_client.tasks.issue_certificate": {"queue": "acme", "routing_key": "acme"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "renew-due": {"task": "acme_client.tasks.renew_due", "schedule": CERTMGR_RENEW_INTERVAL},
    # ARI (RFC 9773) of the certificates whose next ask is due: each is asked about twice a
    # day (the CA's Retry-After, bounded to 1-24 h), whatever this interval (acme_client/ari.py).
    "ari-refresh": {"task": "acme_client.tasks.ari_refresh", "schedule": CERTMGR_RENEW_INTERVAL},
    # Unverified hostnames whose next check is due (each backs off on its own, up to a day).
    "verify-due": {"task": "acme_client.tasks.verify_due", "schedule": 60.0},
    # Statuses that time changes: renewal due, expired.
    "channel-statuses": {
        "task": "saleschannels.tasks.statuses_refresh",
        "schedule": CERTMGR_RENEW_INTERVAL,
    },
    "check-expiry": {
        "task": "monitoring.tasks.check_expiry",
        "schedule": CERTMGR_CHECK_EXPIRY_INTERVAL,
    },
    "probe-channels": {
        "task": "saleschannels.tasks.probe_channels",
        "schedule": CERTMGR_PROBE_INTERVAL,
    },
    "staff-summary": {
        "task": "monitoring.tasks.staff_summary",
        "schedule": crontab(minute=0, hour=CERTMGR_STAFF_SUMMARY_HOUR),
    },
}

# LOG_FORMAT=json: one JSON object per line (python-json-logger), where the `extra` fields of
# a log call (event, certificate_id, channel_id, institution_id, order_id) are fields too.
# certmgr/celery.py gives Celery's own handlers the same formatter.
LOG_FORMAT = env("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ValueError(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
_LOG_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": _LOG_FIELDS},
        "json": {"()": "pythonjsonlogger.json.JsonFormatter", "fmt": _LOG_FIELDS},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
# Libraries' chatter that says nothing an operator acts on stays out of the console unless
# CERTMGR_LOG_VERBOSE is on (`make run VERBOSE=1`; README, "Configuration"): django-axes'
# INFO lines (its start banner, every login attempt) and kombu's warning that the embedded
# broker URL (filesystem://) names no host, which it then does not need.
CERTMGR_LOG_VERBOSE = env.bool("CERTMGR_LOG_VERBOSE", default=False)
if not CERTMGR_LOG_VERBOSE:
    LOGGING["filters"] = {
        "broker_no_hostname": {"()": "certmgr.log_filters.BrokerNoHostnameFilter"}
    }
    LOGGING["loggers"] = {
        "axes": {"level": "WARNING"},
        "kombu.connection": {"filters": ["broker_no_hostname"]},
    }
