"""`readings_ingest` and `rejected_message_reprocess` end to end."""

from datetime import UTC, datetime

import pytest

from common.exceptions import ApplicationError
from sensors.ingest import rejected_message_reprocess
from sensors.models import Reading, RejectedMessage, Sensor, Transport
from sensors.tests.factories import SensorFactory
from sensors.tests.ingest.messages import ingest, msg

pytestmark = pytest.mark.django_db(transaction=False)


def test_old_contract_message_is_stored_and_sensor_registered():
    result = ingest([msg()])

    assert (result.stored, result.duplicates, result.rejected) == (1, 0, 0)
    reading = Reading.objects.get()
    assert reading.sensor.key == "temperature"
    assert reading.sensor.kind == "temperature"
    assert reading.timestamp == datetime(2024, 12, 1, 12, tzinfo=UTC)
    assert reading.value == 14.0


def test_atomic_batch_names_each_bad_index_and_stores_nothing():
    with pytest.raises(ApplicationError) as caught:
        ingest(
            [
                {"sensor": "temperature", "value": 1, "timestamp": "2024-12-01 12:00:00"},
                {"sensor": "temperature", "value": "x", "timestamp": "soon"},
                {"sensor": "temperature", "value": 2, "timestamp": "2024-12-01 12:01:00"},
                "not an object",
            ],
            atomic=True,
            decoded=True,
            transport=Transport.REST,
        )

    assert set(caught.value.fields) == {"1", "3"}
    assert set(caught.value.fields["1"]) == {"value", "timestamp"}
    assert Reading.objects.count() == 0
    assert RejectedMessage.objects.count() == 0
    assert not Sensor.objects.exists()


def test_reprocess_ingests_a_fixed_message_and_keeps_a_still_broken_one(settings):
    settings.SENSORS_AUTO_REGISTER = False
    ingest([msg(sensor="later"), b"{broken"])
    later, broken = RejectedMessage.objects.order_by("payload")
    assert later.sensor_key == "later"
    SensorFactory(key="later")

    assert rejected_message_reprocess(message=later).stored == 1
    assert rejected_message_reprocess(message=broken).rejected == 1
    assert list(RejectedMessage.objects.all()) == [broken]
    assert Reading.objects.get().sensor.key == "later"
