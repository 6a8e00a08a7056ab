"""The SQL DDL of the whole schema for PostgreSQL, rendered without a PostgreSQL server.

Django's PostgreSQL schema editor writes the statements (`collect_sql`), as `sqlmigrate` does, but for the
models' current state rather than migration by migration: the result is what `migrate` builds, in one pass
(tables first, then the indexes and foreign keys), like `pg_dump --schema-only`. It never connects, so it works the
same whether the configured database is PostgreSQL, SQLite or absent. The readings table is the exception: it is
partitioned by time on PostgreSQL (pg_partman, sensors migration 0006), so its statements come from
`sensors.services.partitions.partitioned_table_sql` and need the pg_partman extension on the server, as `migrate`
does. Data migrations (role groups, schedules)
are rows, not schema: run `migrate` for those, or `migrate --fake` after loading this file.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import models
from django.db.backends.postgresql.base import DatabaseWrapper
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from sensors.models import Reading
from sensors.services.partitions import partitioned_table_sql

# The oldest PostgreSQL Django 5.2 supports: features that depend on the version are chosen for it, so the file
# loads on every supported server.
PG_VERSION = 140000


def _postgresql() -> DatabaseWrapper:
    wrapper = DatabaseWrapper(
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "schema",
            "USER": "",
            "PASSWORD": "",
            "HOST": "",
            "PORT": "",
            "OPTIONS": {},
            "TIME_ZONE": None,
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": False,
            "AUTOCOMMIT": True,
            "ATOMIC_REQUESTS": False,
            "TEST": {},
        },
        alias="export_schema",
    )
    wrapper.pg_version = PG_VERSION  # a cached property: set, it never asks a server
    # Not atomic: the editor would open a transaction (a connection); the file wraps itself in BEGIN/COMMIT.
    wrapper.features.can_rollback_ddl = False
    return wrapper


def _models() -> list[type[models.Model]]:
    """The models as the migrations leave them (not as models.py says: an auto-created many-to-many table keeps
    the key type it was made with, e.g. auth's), and `django_migrations`."""
    state = MigrationLoader(None, ignore_no_migrations=True).project_state()
    found = [
        model
        for model in state.apps.get_models(include_auto_created=False)
        if model._meta.managed and not model._meta.proxy and not model._meta.swapped
    ]
    found.append(MigrationRecorder.Migration)  # the table `migrate` keeps its history in
    return sorted(found, key=lambda model: model._meta.db_table)


def schema_sql() -> str:
    """The DDL of every table, index and constraint of the installed apps' models (and `django_migrations`),
    for PostgreSQL, as one transaction. Loading it into an empty database gives the tables `migrate` makes."""
    wrapper = _postgresql()
    readings = Reading._meta.db_table
    with wrapper.schema_editor(collect_sql=True, atomic=False) as editor:
        for model in _models():
            if model._meta.db_table == readings:
                reading_model = model
                continue  # partitioned on PostgreSQL (migration 0006): its DDL is the sensors app's, below
            editor.create_model(model)  # many-to-many tables too
        # The name Django gives the foreign key (private, in every schema editor; django-stubs do not declare it).
        foreign_key = editor._fk_constraint_name(  # type: ignore[attr-defined]
            reading_model, reading_model._meta.get_field("sensor"), "_fk_%(to_table)s_%(to_column)s"
        )
    statements = [*editor.collected_sql, *partitioned_table_sql(foreign_key_name=str(foreign_key).strip('"'))]
    header = [
        "-- Sensorhub schema for PostgreSQL (manage.py export_schema)",
        f"-- Rendered {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC from the models; no data, no migration history.",
        "BEGIN;",
    ]
    return "\n".join([*header, *statements, "COMMIT;"]) + "\n"
