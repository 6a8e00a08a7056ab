"""Settings shared by every environment.

Values come from the environment (django-environ); a `.env` file next to manage.py is read if present and OS
variables win over it. The defaults here are the embedded set-up: SQLite, no Redis, a filesystem Celery broker,
so that `make run` works on a machine with nothing but Python. Every variable is listed in `.env.example` and in
the README's environment table.
"""

import importlib.util
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    # read_env never overrides variables already set in the OS environment.
    environ.Env.read_env(BASE_DIR / ".env")


def env_secret(name: str, default: str | None = None) -> str:
    """A secret exactly as set. django-environ takes a value starting with "$" for the name of another variable,
    and a key from Django's get_random_secret_key() starts with "$" once in 50; secrets are read as they are."""
    value = env.ENVIRON.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"Set the {name} environment variable")
    return value


# ------------------------------------------------------------------------------
# General
# ------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = True
USE_TZ = True
# Dates and times as 2026-12-03 14:05:09 on pages and in the admin (config/formats/en/formats.py).
FORMAT_MODULE_PATH = ["config.formats"]
ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# A less guessable admin path can be set in production.
ADMIN_URL = env("DJANGO_ADMIN_URL", default="admin/")
# Where the embedded mode keeps its runtime files (SQLite database, Celery filesystem broker).
VAR_DIR = Path(env("SENSORHUB_VAR_DIR", default=str(BASE_DIR / "var")))

# Proxies in front of the web server that append the client's address to X-Forwarded-For (a load balancer, nginx).
# 0 (the default): the header is ignored and the client is the TCP peer, since any client can write the header.
# DRF's throttles (NUM_PROXIES) and allauth's rate limits take the address from the same rule.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT

# ------------------------------------------------------------------------------
# Databases: https://django-environ.readthedocs.io/en/latest/types.html#environ-env-db-url
# ------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: WAL lets readers run beside one writer, IMMEDIATE transactions
    # take the write lock up front instead of failing with "database is locked" half-way.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE", "timeout": 20}
    )

# ------------------------------------------------------------------------------
# Redis: one switch for the cache, the Celery broker and the channel layer. Empty means embedded mode.
# ------------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")

# ------------------------------------------------------------------------------
# Apps
# ------------------------------------------------------------------------------
DJANGO_APPS = [
    # daphne first: it makes `runserver` serve ASGI (HTTP and WebSocket).
    "daphne",
    "config.admin.SensorhubAdminConfig",  # django.contrib.admin, with one Accounts section (config/admin.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
]
THIRD_PARTY_APPS = [
    "channels",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_celery_results",
    "allauth",
    "allauth.account",
]
LOCAL_APPS = [
    "common",
    "accounts",
    "sensors",
    "detection",
    "rates",
    "archive",
    "dashboard",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # A NUL character or lone surrogate in a path or query parameter: 400 naming it, before any view (docs/api.md).
    "common.inputs.params_storable_middleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

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

# ------------------------------------------------------------------------------
# Static files: collected into STATIC_ROOT and served by WhiteNoise
# ------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# uPlot (the dashboard's charts) comes from the uplot-python package installed with requirements/base.txt and is
# served as /static/vendor/uplot/uPlot.iife.js: charts work offline, and no third-party code is committed here.
# find_spec locates the package without importing it (its module imports IPython).
_UPLOT_SPEC = importlib.util.find_spec("uplot")
if _UPLOT_SPEC is None or not _UPLOT_SPEC.submodule_search_locations:
    raise ImproperlyConfigured("uplot-python is not installed: pip install -r requirements/base.txt")
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/uplot", Path(next(iter(_UPLOT_SPEC.submodule_search_locations))) / "static"),
]

# ------------------------------------------------------------------------------
# Authentication: email is the login (accounts.User); django-allauth runs the account pages
# https://docs.allauth.org/en/latest/account/configuration.html
# ------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# One backend for every path that checks a password (log-in page, admin, API token, re-authentication): allauth's
# email log-in plus the per-account lock and the rule of who may authenticate (accounts/backends.py).
AUTHENTICATION_BACKENDS = ["accounts.backends.AccountBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "landing"
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
# The current password of a change counts towards the per-account lock (accounts/forms.py).
ACCOUNT_FORMS = {"change_password": "accounts.forms.PasswordChangeForm"}
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False  # confirming is a write: it takes a POST
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_LOGOUT_REDIRECT_URL = "landing"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Sensorhub] "
# Failed log-ins on the page are limited per client address by allauth; the per-account limit is the lock below,
# shared by every log-in path.
ACCOUNT_RATE_LIMITS = {
    "login_failed": env("ACCOUNT_LOGIN_FAILED_RATE", default="10/m/ip"),
    "signup": env("ACCOUNT_SIGNUP_RATE", default="20/m/ip"),
}
# This many wrong passwords for one account (its email, any case, from any address) within
# ACCOUNTS_LOGIN_LOCK_SECONDS lock it for ACCOUNTS_LOGIN_LOCK_SECONDS on every path (docs/operations.md, "Security").
ACCOUNTS_LOGIN_LOCK_FAILURES = env.int("ACCOUNTS_LOGIN_LOCK_FAILURES", default=5)
ACCOUNTS_LOGIN_LOCK_SECONDS = env.int("ACCOUNTS_LOGIN_LOCK_SECONDS", default=900)
# New accounts wait until staff approve them (admin action "Approve") when this is on.
ACCOUNTS_REQUIRE_APPROVAL = env.bool("ACCOUNTS_REQUIRE_APPROVAL", default=False)
# The role a new account gets once it may log in: "viewer", "operator" or "" for none.
ACCOUNTS_DEFAULT_ROLE = env("ACCOUNTS_DEFAULT_ROLE", default="viewer")

# ------------------------------------------------------------------------------
# Email
# ------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Sensorhub <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# ------------------------------------------------------------------------------
# Cache: Redis when configured (shared by every process), else per-process memory
# ------------------------------------------------------------------------------
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


# ------------------------------------------------------------------------------
# Channels: https://channels.readthedocs.io/en/latest/topics/channel_layers.html
# ------------------------------------------------------------------------------
def redis_channel_layers(url: str) -> dict:
    """The channels-redis layer on `url` (test settings reuse it with their own Redis).

    channels-redis drops messages silently past a channel's `capacity` (its default: 100) and once they are
    `expiry` seconds old. All sockets of one server process share one Redis channel key, which receives one
    message per ingest batch per watched sensor: 10,000 lets a process fall 10 s behind at 1,000 messages/s (20
    watched sensors at 20 ms batches) before anything is lost. Reasoning: docs/api.md, "Live streams".
    """
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": url,
                        # redis-py 8 times out socket reads after 5 s by default, as long as channels-redis blocks
                        # waiting for a message (BZPOPMIN, 5 s): an idle socket's consumer would crash every 5 s
                        # (close 1011). 15 s outlasts that read and still notices a dead connection.
                        "socket_timeout": 15,
                        # A Redis restart closes every pooled connection, and redis-py's asyncio connections do not
                        # retry by default: the next command on each (a socket's group_add at connect, a broadcast)
                        # failed, and the first WebSocket after a restart answered 500. A closed connection is
                        # reconnected and the command sent again (up to 3 times, 50 ms to 1 s apart); timeouts are
                        # not retried (the command may have run).
                        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
                        "retry_on_error": [RedisConnectionError],
                    }
                ],
                "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=10_000),
                "expiry": env.int("CHANNEL_LAYER_EXPIRY", default=60),
            },
        }
    }


if REDIS_URL:
    CHANNEL_LAYERS = redis_channel_layers(REDIS_URL)
else:
    # Embedded mode: the processes of `make run` share live messages through a SQLite file, so readings the
    # simulator stores, detections and job progress reach browsers (common/sqlite_layer.py; one machine only).
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "common.sqlite_layer.SQLiteChannelLayer",
            "CONFIG": {
                "path": str(VAR_DIR / "channels.sqlite3"),
                "expiry": env.int("CHANNEL_LAYER_EXPIRY", default=60),
            },
        }
    }
# Open WebSockets check their caller's rights again at once when accounts' services or the admin change them, and
# every this many seconds whatever happened (a token expiring, a row edited outside the services): the longest a
# socket outlives its rights (docs/operations.md, "Security").
LIVE_RECHECK_SECONDS = env.float("LIVE_RECHECK_SECONDS", default=60.0)

# ------------------------------------------------------------------------------
# Celery: https://docs.celeryq.dev/en/stable/userguide/configuration.html
# ------------------------------------------------------------------------------
# The embedded broker: messages are files. kombu ignores the host of this transport, but warns at every start of
# every process ("No hostname was supplied") when the URL names none.
EMBEDDED_BROKER_URL = "filesystem://localhost/"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or EMBEDDED_BROKER_URL)
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Embedded mode: messages are files under var/celery, so worker and beat need no server.
    _broker_dir = VAR_DIR / "celery"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
    }
    for _folder in ("queue", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_TRACK_STARTED = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A new pool process must report ready within this many seconds or the worker kills it and starts another. Celery's
# 4 s is shorter than loading the detector's compiled code (detection.tasks warms it in every pool process) on a
# busy machine: a pool process lost mid-job was then replaced, killed and replaced again, for ever.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 60
# Schedules are PeriodicTask rows from data migrations, edited in the admin; none is declared in settings.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# ------------------------------------------------------------------------------
# Jobs: the one mechanism for long tasks (common/jobs.py; docs/development.md, "Long tasks as jobs")
# ------------------------------------------------------------------------------
# A running job writes its progress at most this often (seconds), and its heartbeat at least this often.
JOBS_PROGRESS_INTERVAL = env.float("JOBS_PROGRESS_INTERVAL", default=0.5)
JOBS_HEARTBEAT_SECONDS = env.float("JOBS_HEARTBEAT_SECONDS", default=15.0)
# A running job silent for this long is lost (its worker died): `common.reap_jobs` marks it failed, freeing its lock.
# Well above the heartbeat, since on SQLite a heartbeat waits while the job's own write transaction runs.
JOBS_STALE_SECONDS = env.int("JOBS_STALE_SECONDS", default=300)
# A job queued this long that no worker took is given up (its lock freed; its task, if it comes, does not run).
JOBS_QUEUED_TIMEOUT_SECONDS = env.int("JOBS_QUEUED_TIMEOUT_SECONDS", default=24 * 3600)
# Finished jobs (and the files uploaded for them) are deleted after this many days.
JOBS_KEEP_DAYS = env.int("JOBS_KEEP_DAYS", default=30)
# The largest CSV file the upload page takes (/dashboard/import/); kept in the database until its job reads it. It
# must stay under REQUEST_MAX_BODY_BYTES (the whole request's cap), with room for the form's other fields.
CSV_UPLOAD_MAX_BYTES = env.int("CSV_UPLOAD_MAX_BYTES", default=8 * 1024 * 1024)

# ------------------------------------------------------------------------------
# Archive: data export and import jobs (docs/archive.md)
# ------------------------------------------------------------------------------
# Export files and uploaded archives of the dashboard's data page; the web process and the workers must share it.
ARCHIVE_DIR = Path(env("ARCHIVE_DIR", default=str(VAR_DIR / "archive")))

# ------------------------------------------------------------------------------
# Django REST framework: https://www.django-rest-framework.org/api-guide/settings/
# ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.TokenAuthentication",  # knox, with accounts' rule of who may log in
        "rest_framework.authentication.SessionAuthentication",
        # Devices: `Authorization: Device <key>`; passes only the permission that writes readings.
        "sensors.authentication.DeviceKeyAuthentication",
    ],
    # Reading needs the viewer role at least; views that write ask for more.
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.CanRead"],
    "DEFAULT_PAGINATION_CLASS": "common.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    # drf-spectacular's, plus tags by area and the error answers of each operation (common/schema.py).
    "DEFAULT_SCHEMA_CLASS": "common.schema.AutoSchema",
    "EXCEPTION_HANDLER": "common.exceptions.api_exception_handler",
    # Per client address without credentials, per user, per device key (common/throttling.py, sensors/throttling.py).
    "DEFAULT_THROTTLE_CLASSES": [
        "common.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
        "sensors.throttling.DeviceKeyRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("API_THROTTLE_ANON", default="60/minute"),
        "user": env("API_THROTTLE_USER", default="1200/minute"),
        "device": env("API_THROTTLE_DEVICE", default="1200/minute"),
        "login": env("API_THROTTLE_LOGIN", default="5/minute"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # The client address of the throttles: X-Forwarded-For only behind trusted proxies (TRUSTED_PROXY_COUNT).
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}

# API tokens (django-rest-knox): stored as SHA-512 digests, shown once, expire, revocable.
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=env.int("API_TOKEN_TTL_DAYS", default=90)),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
    "USER_SERIALIZER": "accounts.api.serializers.UserSerializer",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Sensorhub API",
    "DESCRIPTION": "Sensor telemetry, leak detection and exchange rates.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc from the drf-spectacular-sidecar package: the docs work offline, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The API takes JSON; the form parsers DRF also installs serve the browsable API, not clients.
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
    # The default hook, then the health endpoints (plain Django views the generator does not see).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "common.schema.health_paths"],
    # One tag per area (common.schema.AutoSchema tags each operation with its app, or the area its view names).
    "TAGS": [
        {"name": "auth", "description": "API tokens: obtain one with email and password, revoke the one in use."},
        {"name": "accounts", "description": "Users and their roles (staff), and the caller itself."},
        {"name": "sensors", "description": "The catalogue: platforms, installations and sensors."},
        {"name": "readings", "description": "Writing readings (operators, device keys) and querying them."},
        {
            "name": "detection",
            "description": "Detections, anomalies and their lifecycle, events, baselines, a sensor's detector.",
        },
        {"name": "rates", "description": "Exchange rates: lists, conversion, updates (and the old `/v1/` paths)."},
        {"name": "health", "description": "Liveness and the health of each part (no authentication)."},
    ],
    # Several models have a `status` or `kind` of their own: name each choice set once, for what it is.
    "ENUM_NAME_OVERRIDES": {
        "DetectionStatusEnum": "detection.models.Status",
        "AnomalyStatusEnum": "detection.models.Anomaly.State",
        "SensorStateEnum": "detection.models.SensorEvent.Kind",  # the same choices as DetectorState.SensorState
        "SystemEventKindEnum": "detection.models.SystemEvent.Kind",
        "BaselineKindEnum": "detection.models.Baseline.Kind",
    },
}

# ------------------------------------------------------------------------------
# HTTP edge: request limits, the API's parsers, its error answers (docs/operations.md, "Request limits")
# ------------------------------------------------------------------------------
# Request bodies larger than this are refused with 413 `request_too_large` as they arrive, before anything buffers
# them (common/asgi.py), and by Django (its DATA_UPLOAD_MAX_MEMORY_SIZE). The largest legitimate body is a full
# POST /api/v1/readings/ batch: 10,000 readings, about 1-2 MB compact and more pretty-printed or with long keys,
# so ~1 KB per reading. No endpoint takes file uploads (CSV imports are the `import_readings` command).
# https://docs.djangoproject.com/en/5.2/ref/settings/#data-upload-max-memory-size
REQUEST_MAX_BODY_BYTES = env.int("REQUEST_MAX_BODY_BYTES", default=10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_MAX_BODY_BYTES
# Requests under these paths are API requests: Django's 400/403/404/500 answers to them have the one error shape
# (common/exceptions.py); other paths keep Django's HTML pages.
API_PATH_PREFIXES = ["/api/", "/v1/"]
# DRF's parsers, with a JSON parser that answers any undecodable body (even one nested too deeply) with 400.
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = [
    "common.parsers.JSONParser",
    "rest_framework.parsers.FormParser",
    "rest_framework.parsers.MultiPartParser",
]

# ------------------------------------------------------------------------------
# Sensors: ingestion (docs/ingestion.md)
# ------------------------------------------------------------------------------
# Readings for an unknown sensor key register it (devices keep the old contract); False rejects them instead.
SENSORS_AUTO_REGISTER = env.bool("SENSORS_AUTO_REGISTER", default=True)
# Zone that naive timestamps ("2024-12-01 12:00:00") are read in.
SENSORS_NAIVE_TIMEZONE = env("SENSORS_NAIVE_TIMEZONE", default="UTC")
# Readings stamped further ahead of the receive time than this are rejected.
SENSORS_MAX_FUTURE_SECONDS = env.int("SENSORS_MAX_FUTURE_SECONDS", default=300)
# Messages larger than this are rejected unread (pub/sub, stream, MQTT, each REST item).
SENSORS_MAX_MESSAGE_BYTES = env.int("SENSORS_MAX_MESSAGE_BYTES", default=65536)
# Called after commit with the readings each ingest call stored: live broadcast, detection hand-off.
SENSORS_INGEST_HOOKS = ["sensors.broadcast.readings_broadcast", "detection.handoff.readings_handoff"]
# Redis pub/sub channel of the old sensor processor's contract.
SENSORS_PUBSUB_CHANNEL = env("SENSORS_PUBSUB_CHANNEL", default="sensor_stream")
# Redis stream of the no-loss path, the consumer group that reads it, and this process's name in the group
# (empty: the host name). Entries pending this long at another consumer are taken over (it is presumed dead).
SENSORS_STREAM_KEY = env("SENSORS_STREAM_KEY", default="sensor_stream")
SENSORS_STREAM_GROUP = env("SENSORS_STREAM_GROUP", default="sensorhub")
SENSORS_STREAM_CONSUMER = env("SENSORS_STREAM_CONSUMER", default="")
SENSORS_STREAM_CLAIM_IDLE_MS = env.int("SENSORS_STREAM_CLAIM_IDLE_MS", default=60_000)
# Writer threads of the stream consumer, each with its own database connection: while they write, the main
# thread reads and validates the next batches (docs/benchmarks.md has the figures).
SENSORS_STREAM_WRITERS = env.int("SENSORS_STREAM_WRITERS", default=2)
# Delete stream entries once every group of the stream has acknowledged them (keeps Redis memory bounded).
SENSORS_STREAM_TRIM = env.bool("SENSORS_STREAM_TRIM", default=True)
# The consumer writes a batch when it holds this many messages or this many milliseconds have passed since its
# first. The wait is also the longest delay batching adds before readings reach live streams; under load batches
# fill up long before it (docs/benchmarks.md).
SENSORS_CONSUMER_BATCH_SIZE = env.int("SENSORS_CONSUMER_BATCH_SIZE", default=5000)
SENSORS_CONSUMER_BATCH_MS = env.int("SENSORS_CONSUMER_BATCH_MS", default=20)
# With REDIS_URL, /healthcheck's `consumers` part is degraded while one of these transports has no consumer reading
# (`manage.py consume_readings --source <transport>`; their heartbeats in Redis). Empty: never degraded for that.
SENSORS_HEALTH_CONSUMERS = env.list("SENSORS_HEALTH_CONSUMERS", default=["stream", "pubsub"])
# MQTT (docs/ingestion.md, "MQTT"): the broker, mqtt://[user:password@]host[:port] or mqtts://... for TLS. Empty
# means no MQTT: `consume_readings --source mqtt` and `simulate_sensors --target mqtt` refuse to start.
MQTT_URL = env("MQTT_URL", default="")
# Devices publish on <prefix>/<sensor key>; the consumer subscribes to <prefix>/+ at QoS 1.
SENSORS_MQTT_TOPIC_PREFIX = env("SENSORS_MQTT_TOPIC_PREFIX", default="sensors")
# The consumer's fixed client id names its persistent session on the broker: one id per consumer process.
SENSORS_MQTT_CLIENT_ID = env("SENSORS_MQTT_CLIENT_ID", default="sensorhub-ingest")
# Seconds the broker keeps that session, queueing messages for it, after the consumer disconnects.
SENSORS_MQTT_SESSION_EXPIRY = env.int("SENSORS_MQTT_SESSION_EXPIRY", default=7 * 24 * 3600)
# Largest list accepted by POST /api/v1/readings/.
SENSORS_REST_MAX_BATCH = 10_000
# HTTP sources (JSON/CSV endpoints fetched every 10 minutes): larger answers fail the fetch unread...
SENSORS_SOURCE_MAX_BYTES = env.int("SENSORS_SOURCE_MAX_BYTES", default=10 * 1024 * 1024)
# ...and rows of their fetch log older than this many days are deleted by the scheduled run.
SENSORS_SOURCE_LOG_DAYS = env.int("SENSORS_SOURCE_LOG_DAYS", default=30)

# ------------------------------------------------------------------------------
# Sensors: partitions, roll-ups, retention (docs/operations.md, "Partitions, roll-ups and retention")
# ------------------------------------------------------------------------------
# PostgreSQL only: the time range of one partition of the readings table (pg_partman's interval: daily, weekly,
# monthly, quarterly or yearly), read once by the migration that partitions the table...
SENSORS_PARTITION_INTERVAL = env("SENSORS_PARTITION_INTERVAL", default="monthly")
# ...and how many partitions the scheduled job keeps ready ahead of the current one.
SENSORS_PARTITION_PREMAKE = env.int("SENSORS_PARTITION_PREMAKE", default=4)
# Raw readings (and detections) older than this many days are deleted by the scheduled retention job, after
# their hourly roll-ups were verified; roll-ups, anomalies and events are kept for ever. Empty or 0: raw
# readings are kept for ever. A platform may override it in the admin.
SENSORS_RAW_RETENTION_DAYS = env.int("SENSORS_RAW_RETENTION_DAYS", default=0) or None
# Called by the retention job with what it is about to expire: other apps' per-reading rows follow the same
# cutoffs (sensors may not import them); then, after a real run, the reporters (a system event).
SENSORS_RETENTION_HOOKS = ["detection.retention.detections_expire"]
SENSORS_RETENTION_REPORTERS = ["detection.retention.retention_report"]
# Rows per DELETE where rows go one by one (SQLite, and platforms whose retention is shorter than others').
SENSORS_RETENTION_BATCH = env.int("SENSORS_RETENTION_BATCH", default=10_000)

# ------------------------------------------------------------------------------
# Detection (docs/detection.md): defaults of each sensor's detector settings, edited per sensor in the admin
# ------------------------------------------------------------------------------
# How new sensors' readings are judged: "discord" (against the sensor's own recent past, no baseline; measured
# best on real labeled series) or "baseline" (the leak service's matrix profile against a baseline). Existing
# sensors keep theirs (docs/detection.md, "Methods").
DETECTION_METHOD = env("DETECTION_METHOD", default="discord")
# m: points per subsequence, for the baseline method (144 = 24 h of 10-minute readings) and the discord method.
DETECTION_WINDOW = env.int("DETECTION_WINDOW", default=144)
DETECTION_DISCORD_WINDOW = env.int("DETECTION_DISCORD_WINDOW", default=16)
# discord: a new sensor's first readings are `undefined` (learned from, not judged): its first day at 5-minute
# readings, while it shows its range and daily shape for the first time.
DETECTION_DISCORD_LEARNING = env.int("DETECTION_DISCORD_LEARNING", default=288)
# Levels are % of the baseline's largest matrix-profile distance: warning from this, critical from that. The
# leak service warned at 100; 120 is the measured best (docs/detection.md, "Quality").
DETECTION_WARNING_LEVEL = env.float("DETECTION_WARNING_LEVEL", default=120.0)
DETECTION_CRITICAL_LEVEL = env.float("DETECTION_CRITICAL_LEVEL", default=200.0)
# An anomaly closes after this many consecutive ok readings, and a new alarm within the cool-down joins it.
DETECTION_OK_RUN = env.int("DETECTION_OK_RUN", default=6)
DETECTION_COOLDOWN_SECONDS = env.int("DETECTION_COOLDOWN_SECONDS", default=3600)
# A sensor with no reading for this long becomes not_available (checked by a scheduled job).
DETECTION_SILENCE_SECONDS = env.int("DETECTION_SILENCE_SECONDS", default=3600)
# The seed baseline a new sensor starts from (manage.py load_baselines loads the seeds).
DETECTION_DEFAULT_SEED = env("DETECTION_DEFAULT_SEED", default="seed-mid")
# numba keeps stumpy's compiled functions here: a new worker loads them in seconds instead of compiling them
# (docs/detection.md, "Compilation"). numba reads the variable when stumpy is first imported, after the settings.
os.environ.setdefault("NUMBA_CACHE_DIR", env("NUMBA_CACHE_DIR", default=str(BASE_DIR / "var" / "numba")))
# Detection tasks go to the queues detection-0 … detection-<N-1>, a sensor always to the same one (id modulo N):
# run one single-process worker per queue, so each sensor's detector stays in that process's memory.
DETECTION_SHARDS = env.int("DETECTION_SHARDS", default=1)
# Detectors kept ready in each worker process (LRU); others are rebuilt from their stored state when needed.
DETECTION_CACHE_SENSORS = env.int("DETECTION_CACHE_SENSORS", default=2000)
# Baseline selection uses at most this many of a sensor's newest readings since its last selection (30 days at
# 10 minutes: a run every 15 days sees all of its period, with room for a missed run) (docs/detection.md).
DETECTION_SELECTION_MAX_POINTS = env.int("DETECTION_SELECTION_MAX_POINTS", default=30 * 144)
# Augmentation keeps the newest this many points of baseline plus history (28 days at 10 minutes): a detector's
# update costs time in proportion to its baseline's length (docs/benchmarks.md).
DETECTION_BASELINE_MAX_POINTS = env.int("DETECTION_BASELINE_MAX_POINTS", default=28 * 144)
# How cleaning judges discords (docs/detection.md, "Cleaning"): "relative" to the series itself (median + 5 MAD of
# its top discords), whatever the readings' unit; "legacy" adds the leak service's absolute cut of 2000, in its
# data's units (a series of values around 10,000 loses everything to it). Only to reproduce old figures.
DETECTION_CLEANING = env("DETECTION_CLEANING", default="relative")
if DETECTION_CLEANING not in ("relative", "legacy"):
    raise ImproperlyConfigured(f'DETECTION_CLEANING must be "relative" or "legacy", not {DETECTION_CLEANING!r}.')

# ------------------------------------------------------------------------------
# Dashboard (README, "Dashboard")
# ------------------------------------------------------------------------------
# The overview calls a sensor `silent` when its latest reading is older than this (or it has none): 15 minutes is
# one and a half times the 10-minute cadence detection's defaults assume. Independent of detection's
# DETECTION_SILENCE_SECONDS (which records a not_available event): the wall screen should notice sooner.
DASHBOARD_SILENT_SECONDS = env.int("DASHBOARD_SILENT_SECONDS", default=900)

# ------------------------------------------------------------------------------
# Health check
# ------------------------------------------------------------------------------
# Seconds to wait for Celery workers to answer a ping.
HEALTHCHECK_WORKER_TIMEOUT = env.float("HEALTHCHECK_WORKER_TIMEOUT", default=1.0)

# ------------------------------------------------------------------------------
# Logging: JSON lines (python-json-logger) or plain text for a terminal
# ------------------------------------------------------------------------------
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
# Tasks whose routine "received"/"succeeded" lines (INFO) are not logged: they run many times a second. Their
# failures and retries still are (common/logs.py).
LOG_QUIET_TASKS = env.list("LOG_QUIET_TASKS", default=["detection.detect_readings"])
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "console": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "filters": {
        "over_capacity": {"()": "common.channels.OverCapacityWarning"},
        "routine_task_lines": {"()": "common.logs.RoutineTaskLines"},
    },
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Celery's "Task … received" and "Task … succeeded" lines, quiet for LOG_QUIET_TASKS.
        "celery.worker.strategy": {"filters": ["routine_task_lines"]},
        "celery.app.trace": {"filters": ["routine_task_lines"]},
        # Its only record (INFO) says live messages were dropped; the filter makes it a WARNING.
        "channels_redis.core": {"level": "INFO", "filters": ["over_capacity"]},
    },
}

# ------------------------------------------------------------------------------
# Rates: exchange-rate providers, schedule behaviour, staleness (docs/rates.md)
# ------------------------------------------------------------------------------
# Providers tried in this order on each update; the first that answers well wins (xe, ecb, oxr).
RATES_PROVIDERS = env.list("RATES_PROVIDERS", default=["xe", "ecb", "oxr"])
# The base currency asked of providers that take one (XE; Open Exchange Rates' free plan allows only USD).
RATES_BASE = env("RATES_BASE", default="USD")
# The quote currencies asked of XE (ECB and Open Exchange Rates publish all of theirs).
RATES_QUOTES = env.list("RATES_QUOTES", default=["NGN", "GHS", "KES", "UGX", "MAD", "XOF", "EGP"])
# Answers say `stale: true` when the newest rate was last fetched longer ago than this.
RATES_STALE_AFTER_HOURS = env.float("RATES_STALE_AFTER_HOURS", default=26)
# With true, stale rates or a failing last update make GET /healthcheck answer 503; otherwise only reported.
RATES_HEALTH_REQUIRED = env.bool("RATES_HEALTH_REQUIRED", default=False)
# Seconds to wait for a provider's answer.
RATES_HTTP_TIMEOUT = env.float("RATES_HTTP_TIMEOUT", default=10.0)
# Retries of a failed scheduled update: the n-th waits RATES_RETRY_BACKOFF * 2**(n-1) seconds (capped at 1 h).
RATES_RETRY_MAX = env.int("RATES_RETRY_MAX", default=5)
RATES_RETRY_BACKOFF = env.float("RATES_RETRY_BACKOFF", default=60.0)
# Provider credentials (secrets: set them in `.env` only). A provider without its key is skipped.
XE_API_ID = env("XE_API_ID", default="")
XE_API_KEY = env("XE_API_KEY", default="")
OXR_APP_ID = env("OXR_APP_ID", default="")
# Where each provider is reached (documented endpoints by default; point them at a proxy or a mirror if needed).
RATES_XE_URL = env("RATES_XE_URL", default="https://xecdapi.xe.com/v1/")
RATES_ECB_URL = env("RATES_ECB_URL", default="https://www.ecb.europa.eu/stats/eurofxref/")
RATES_OXR_URL = env("RATES_OXR_URL", default="https://openexchangerates.org/api/")
