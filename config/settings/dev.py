"""Local development: `make run`. Debug on, plain-text logs, a per-checkout secret key."""

from django.core.management.utils import get_random_secret_key

from .base import *  # noqa: F403
from .base import EMAIL_CONFIG, VAR_DIR, env, env_secret

DEBUG = env.bool("DJANGO_DEBUG", default=True)
LOG_FORMAT = env("LOG_FORMAT", default="console")
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT  # noqa: F405


def _dev_secret_key() -> str:
    """The key from the environment, else one generated on first run and kept in var/ (never committed)."""
    key = env_secret("DJANGO_SECRET_KEY", default="")
    if key:
        return key
    path = VAR_DIR / "dev-secret-key"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(get_random_secret_key())
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _dev_secret_key()
VAR_DIR.mkdir(parents=True, exist_ok=True)
STATIC_ROOT.mkdir(exist_ok=True)  # noqa: F405  (WhiteNoise warns about a missing STATIC_ROOT)
INTERNAL_IPS = ["127.0.0.1"]

if EMAIL_CONFIG["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend":  # EMAIL_URL=consolemail://
    # Each mail framed on the console with its subject and links, and saved under var/mail/ (accounts/email.py).
    EMAIL_BACKEND = "accounts.email.DevelopmentEmailBackend"
