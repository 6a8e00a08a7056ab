"""export_schema: the DDL loads into an empty PostgreSQL database and gives the tables migrate gives."""

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from archive.services.schema import schema_sql

ROOT = Path(__file__).resolve().parents[2]

COLUMNS = """
    SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, is_identity
    FROM information_schema.columns WHERE table_schema = 'public'
"""
# Indexes and constraints by what they do (table and definition): their names may differ, since migrate's keep the
# table names of the history (sensors_devicekey's indexes are still called accounts_devicekey_*, from before a move).
INDEXES = """
    SELECT tablename, replace(indexdef, indexname, '<name>') FROM pg_indexes WHERE schemaname = 'public'
"""
CONSTRAINTS = """
    SELECT conrelid::regclass::text, contype, pg_get_constraintdef(oid) FROM pg_constraint
    WHERE connamespace = 'public'::regnamespace
"""


def _multiset(rows) -> dict:
    return dict(Counter(rows))


def _body(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.startswith("-- Rendered"))


@pytest.mark.django_db
def test_schema_renders_without_a_database_connection(django_assert_num_queries):
    with django_assert_num_queries(0):
        sql = schema_sql()
    assert sql.startswith("-- Sensorhub schema")
    assert sql.rstrip().endswith("COMMIT;")
    assert 'CREATE TABLE "sensors_reading"' in sql
    assert 'CREATE TABLE "django_migrations"' in sql
    assert "timestamp with time zone" in sql  # PostgreSQL types, whatever the configured database


def test_command_writes_the_same_schema_with_sqlite_configured(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CI", "REDIS_URL")}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.dev"
    output = tmp_path / "schema.sql"
    subprocess.run(
        [sys.executable, "manage.py", "export_schema", "--output", str(output)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert _body(output.read_text()) == _body(schema_sql())


@pytest.mark.django_db
def test_schema_loads_into_empty_postgresql_with_the_tables_migrate_makes(process_database_url, tmp_path):
    path = tmp_path / "schema.sql"
    call_command("export_schema", "--output", str(path), stderr=open(os.devnull, "w"))  # noqa: SIM115
    settings = connection.settings_dict
    server = {
        "host": settings["HOST"] or "127.0.0.1",
        "port": settings["PORT"] or 5432,
        "user": settings["USER"],
        "password": settings["PASSWORD"] or None,
    }
    name = f"{settings['NAME']}_schema"
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(dbname=name, autocommit=True, **server) as loaded:
            loaded.execute(path.read_text())
            got = {query: _multiset(loaded.execute(query).fetchall()) for query in (COLUMNS, INDEXES, CONSTRAINTS)}
        with connection.cursor() as cursor:
            expected = {}
            for query in (COLUMNS, INDEXES, CONSTRAINTS):
                cursor.execute(query)
                expected[query] = _multiset(cursor.fetchall())
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    tables = {row[0] for row in got[COLUMNS]}
    assert {"sensors_reading", "detection_anomaly", "accounts_user", "django_migrations"} <= tables
    assert got[COLUMNS] == expected[COLUMNS]
    assert got[INDEXES] == expected[INDEXES]
    assert got[CONSTRAINTS] == expected[CONSTRAINTS]
