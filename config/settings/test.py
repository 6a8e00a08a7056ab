"""The test suite (pytest-django).

Outside CI the defaults are embedded (SQLite, Redis on localhost if it runs). With CI=true the suite takes
PostgreSQL and Redis from DATABASE_URL and REDIS_URL and has no fallback: a missing server fails the run. MQTT_URL
defaults to the local Mosquitto in both cases.
"""

from django.core.management.utils import get_random_secret_key

from .base import *  # noqa: F403
from .base import env, redis_channel_layers

CI = env.bool("CI", default=False)

SECRET_KEY = get_random_secret_key()
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; tests only
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOG_FORMAT = "console"
LOGGING["handlers"]["console"]["formatter"] = "console"  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405

if CI:
    # No default: CI must run against the real servers.
    DATABASES = {"default": env.db("DATABASE_URL")}
    REDIS_URL = env("REDIS_URL")
else:
    REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/15")
# Mosquitto as .ci/run starts it (and as it runs on a developer's machine); an unreachable one fails in CI.
MQTT_URL = env("MQTT_URL", default="mqtt://127.0.0.1:1883")

# Throttle counters and allauth's rate limits live in the cache; a per-process one keeps tests apart.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
CELERY_TASK_ALWAYS_EAGER = False
# Ingest does not queue detection tasks in tests (no worker takes them, and a later test's worker would get them);
# the hand-off's own tests put it back.
SENSORS_INGEST_HOOKS = ["sensors.broadcast.readings_broadcast"]

# The servers the suite talks to for real: Redis as Celery broker and channel layer.
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_TRANSPORT_OPTIONS = {}
CHANNEL_LAYERS = redis_channel_layers(REDIS_URL)
