"""The fault suite's scenarios that fit CI's time (the whole suite: `python -m bench.faults`, docs/operations.md,
"Guarantees under faults"): kill -9 of the real stream consumer during 10,000 readings, and a real celery beat
restarted after admin edits of the periodic tasks. Both run the project's processes against the test database and
Redis (no server is restarted: the shared ones stay up); a missing server fails the test in CI."""

import os

import pytest
import redis
from django.db import connection

from bench.faults import ingest, jobs

# The processes write through their own connections: the test's rows must be committed (PostgreSQL only), and the
# schedules the data migrations made must be there for beat.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=connection.vendor == "postgresql")


def _env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "CI": "true",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
    }


def test_killing_the_stream_consumer_at_random_loses_and_duplicates_nothing(redis_url, process_database_url, tmp_path):
    prefix = f"faults{os.getpid()}"
    try:
        outcome = ingest.consumer_kills(
            redis_url=redis_url,
            env=_env(process_database_url, redis_url),
            workdir=tmp_path,
            prefix=prefix,
            n=10_000,
            kills=3,
            duration=6,
            seed=14,
            timeout=60,
        )
    finally:
        redis.Redis.from_url(redis_url).delete(f"{prefix}-stream")
    assert (outcome.expected, outcome.stored, outcome.lost, outcome.duplicated) == (10_000, 10_000, 0, 0), outcome


def test_admin_edits_of_the_schedules_survive_a_beat_restart_and_are_in_force(
    redis_url, process_database_url, tmp_path
):
    outcome = jobs.beat_restart(
        env=_env(process_database_url, redis_url), workdir=tmp_path, queue=f"faults-beat-{os.getpid()}"
    )
    assert (outcome.expected, outcome.stored, outcome.lost) == (3, 3, 0), outcome
    assert outcome.held, outcome.note  # beat sent the edited task at its new interval after the restart
