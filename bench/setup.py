"""What every bench script does first: a scratch PostgreSQL database next to DATABASE_URL's, then Django on it."""

import os
import sys
from urllib.parse import urlsplit, urlunsplit


def django_on_scratch_database(*, script: str, name: str | None = None, suffix: str | None = None) -> None:
    """Refuse anything but PostgreSQL; create (if missing) the database `name`, or `<DATABASE_URL's name><suffix>`,
    on the same server; point Django at it (DEBUG off, quiet logs), set it up and migrate."""
    import psycopg

    url = os.environ.get("DATABASE_URL", "")
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        sys.exit(f"{script} measures PostgreSQL: set DATABASE_URL=postgres://... (SQLite is refused).")
    name = name or f"{parts.path.lstrip('/') or 'postgres'}{suffix}"
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    os.environ["DJANGO_DEBUG"] = "False"  # DEBUG keeps every query in memory
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
