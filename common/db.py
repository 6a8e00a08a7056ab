"""Database helpers more than one app needs."""

from collections.abc import Iterable, Sequence
from typing import Any

from asgiref.sync import SyncToAsync
from django.db import connections
from django.db.models import Field, Model


def copy_rows(
    cursor, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, types: Sequence[str] = ()
) -> None:
    """`COPY table (columns) FROM STDIN` of `rows` through `cursor` (Django's), binary when the column `types` are
    given (psycopg's C dumpers, no text parsing on the server).

    COPY goes through psycopg's own cursor, so its errors are turned into Django's here, as Django does for every
    other statement: a lost connection is an `OperationalError` a consumer waits out, a duplicate an
    `IntegrityError`.
    """
    binary = " (FORMAT BINARY)" if types else ""
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN{binary}"
    with cursor.db.wrap_database_errors, cursor.cursor.copy(statement) as copy:
        if types:
            copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)


def column_of(model: type[Model], name: str) -> str:
    """The database column of `model`'s concrete field `name` (`base` → `base_id` for a foreign key)."""
    found = model._meta.get_field(name)
    if not isinstance(found, Field) or found.column is None:
        raise ValueError(f"{model.__name__}.{name} is not a concrete field.")
    return found.column


def connections_close_after_asgi_request(**kwargs: Any) -> None:
    """`request_finished` receiver: after an HTTP request served through ASGI, close the database connections of
    the thread that served it; elsewhere (WSGI, workers, the one database thread of the WebSocket consumers) leave
    them to CONN_MAX_AGE.

    Django runs each ASGI request's synchronous code in a thread of its own (asgiref's `ThreadSensitiveContext`),
    and no later request uses that thread: a connection kept there for reuse stays open, idle, until garbage
    collection. Under load one daphne process held 79 of PostgreSQL's 100 connections and requests failed with
    "too many clients already" (docs/benchmarks.md, "Load"). Persistent connections still serve the threads that
    live on, where they save a connect per use (WebSocket connects make several database calls each).
    """
    if SyncToAsync.thread_sensitive_context.get(None) is None:
        return  # not inside an ASGI request's own context
    for connection in connections.all(initialized_only=True):
        connection.close()
