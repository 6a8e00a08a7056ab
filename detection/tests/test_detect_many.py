from datetime import UTC, datetime, timedelta

import pytest

from detection.models import DetectorState
from detection.services.detect import PENDING_CHUNK, _pending
from sensors.models import Reading, Sensor

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 1, tzinfo=UTC)


def test_pending_reads_more_sensors_than_one_query_may_name():
    """1,001 sensors in one batch (one OR term each) once broke SQLite's expression depth limit of 1,000."""
    count = 1001
    assert count > 2 * PENDING_CHUNK
    Sensor.objects.bulk_create([Sensor(key=f"many-{n:04d}") for n in range(count)])
    ids = list(Sensor.objects.filter(key__startswith="many-").order_by("key").values_list("pk", flat=True))
    Reading.objects.bulk_create(
        Reading(sensor_id=pk, timestamp=START + timedelta(seconds=s), value=float(s)) for pk in ids for s in range(2)
    )
    states = {pk: DetectorState(sensor_id=pk, window=4, last_timestamp=START) for pk in ids}
    pending = _pending(states, dict.fromkeys(ids, START))
    assert len(pending) == count
    assert pending[ids[-1]] == [(START, 0.0), (START + timedelta(seconds=1), 1.0)]
