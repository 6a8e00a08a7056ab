"""export_data / import_data: round trips with equal counts and checksums, filters, refusals, bad files."""

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from accounts.tests.factories import UserFactory
from archive.services.export import archive_digests, archive_export
from archive.services.imports import archive_import
from common.exceptions import ApplicationError
from detection.models import Anomaly, Detection, SensorEvent, Status, SystemEvent
from detection.tests.factories import AnomalyFactory, SensorEventFactory, SystemEventFactory
from sensors.models import Installation, Platform, Reading, ReadingHourly, Sensor
from sensors.selectors import readings_bucketed
from sensors.tests.factories import InstallationFactory, PlatformFactory, SensorFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 12, 1, tzinfo=UTC)
SYSTEM_EVENT_FIELDS = ("sensor_id", "kind", "job", "message", "data", "created_at")
ARCHIVE_MODELS = (Platform, Installation, Sensor, Reading, Detection, Anomaly, SensorEvent)


@pytest.fixture(autouse=True)
def small_buckets(monkeypatch):
    # Small buckets so that a few dozen readings already span several bucket documents.
    monkeypatch.setattr("archive.services.export.BUCKET", 7)
    monkeypatch.setattr("archive.services.imports.BUCKET", 7)


@pytest.fixture
def data(db):
    """Two platforms (one with an installation and no sensor), three sensors (one on no platform), their series,
    anomalies (one acknowledged by a user), events pointing at an anomaly, and system events."""
    user = UserFactory(email="Operator@Example.com")
    north = PlatformFactory(slug="north", name="North field", latitude=60.5, longitude=4.25, description="ünïcode")
    south = PlatformFactory(slug="south", name="South field")
    module = InstallationFactory(platform=north, name="Module A", porosity={"north": 0.25, "top": 1})
    InstallationFactory(platform=south, name="Empty module")
    a = SensorFactory(key="a-temp", platform=north, installation=module, x=1.5, unit="°C")
    b = SensorFactory(key="B-flow", platform=south, kind="flow", unit="m3/h", active=False)
    c = SensorFactory(key="loose", platform=None)
    for sensor, n in ((a, 30), (b, 9), (c, 0)):
        Reading.objects.bulk_create(
            Reading(sensor=sensor, timestamp=T0 + timedelta(minutes=i), value=i / 3 - 2.0) for i in range(n)
        )
    Detection.objects.bulk_create(
        Detection(
            sensor=a,
            timestamp=T0 + timedelta(minutes=i),
            level=None if i < 5 else i * 1.1,
            distance=0.1 * i,
            status=Status.UNDEFINED if i < 5 else Status.OK,
        )
        for i in range(20)
    )
    old = AnomalyFactory(sensor=a, started_at=T0 - timedelta(days=3), status=Anomaly.State.RESOLVED)
    new = AnomalyFactory(
        sensor=a,
        started_at=T0 + timedelta(minutes=10),
        ended_at=T0 + timedelta(minutes=12),
        closed_at=None,
        status=Anomaly.State.ACKNOWLEDGED,
        acknowledged_by=user,
        acknowledged_at=T0 + timedelta(minutes=13),
        note="checked on site",
    )
    SensorEventFactory(sensor=a, anomaly=old, at=T0 - timedelta(days=3))
    SensorEventFactory(sensor=a, anomaly=new, at=T0 + timedelta(minutes=10))
    SensorEventFactory(sensor=b, kind=SensorEvent.Kind.NOT_AVAILABLE, level=None, at=T0 + timedelta(hours=1))
    SystemEventFactory(sensor=a, data={"z": [1, 2], "a": "x"})
    SystemEventFactory()  # no sensor: a job's own event, never archived
    return {"user": user, "north": north, "a": a, "b": b, "c": c, "old": old, "new": new}


def _export(tmp_path, name="archive.jsonl", **kwargs):
    path = tmp_path / name
    with path.open("wb") as out:
        result = archive_export(out=out, **kwargs)
    return path, result


def _snapshot_rows():
    """Every archived row as plain values (ids of readings and detections aside: they are new after a restore)."""
    return {
        "platforms": list(Platform.objects.order_by("id").values()),
        "installations": list(Installation.objects.order_by("id").values()),
        "sensors": list(Sensor.objects.order_by("id").values()),
        "readings": list(Reading.objects.order_by("sensor_id", "timestamp").values("sensor_id", "timestamp", "value")),
        "detections": list(
            Detection.objects.order_by("sensor_id", "timestamp").values_list(
                "sensor_id", "timestamp", "level", "status"
            )
        ),
        "anomalies": list(Anomaly.objects.order_by("id").values()),
        "sensor_events": list(SensorEvent.objects.order_by("id").values()),
        # New ids (the jobs' own events may hold the old ones): everything else is kept.
        "system_events": list(
            SystemEvent.objects.filter(sensor__isnull=False).order_by("id").values(*SYSTEM_EVENT_FIELDS)
        ),
    }


def _wipe():
    for model in ARCHIVE_MODELS:
        model.objects.all().delete()
    SystemEvent.objects.filter(sensor__isnull=False).delete()


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_round_trip_restores_every_table_exactly(data, tmp_path, fmt):
    before = _snapshot_rows()
    path, exported = _export(tmp_path, name=f"archive.{fmt}", format=fmt)
    assert exported.counts == {
        "platforms": 2,
        "installations": 2,
        "sensors": 3,
        "anomalies": 2,
        "sensor_events": 3,
        "system_events": 1,
        "readings": 39,
        "detections": 20,
    }
    digests = archive_digests()
    assert {name: d.hexdigest for name, d in digests.items()} == exported.checksums
    _wipe()
    assert Reading.objects.count() == 0

    result = archive_import(path=path)

    assert result.verified
    assert result.counts == exported.counts == result.inserted
    assert result.checksums == exported.checksums
    assert {name: d.hexdigest for name, d in archive_digests().items()} == exported.checksums
    after = _snapshot_rows()
    for table, rows in before.items():
        assert after[table] == rows, table
    assert Anomaly.objects.get(id=data["new"].id).acknowledged_by == data["user"]
    # Sequences moved past the kept keys: a new row does not collide.
    assert PlatformFactory(slug="new").id > data["north"].id
    assert AnomalyFactory(sensor=data["a"]).id > data["new"].id


def test_jsonl_is_one_document_per_sensor_with_buckets_header_and_trailer(data, tmp_path):
    path, exported = _export(tmp_path)
    docs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert docs[0]["type"] == "header"
    assert docs[0]["format"] == "sensorhub-archive"
    assert docs[-1] == {"type": "trailer", "counts": exported.counts, "checksums": exported.checksums}
    assert [d["type"] for d in docs[1:3]] == ["platform", "platform"]
    assert [i["name"] for i in docs[1]["installations"]] == ["Module A"]
    sensors = [d for d in docs if d["type"] == "sensor"]
    assert [d["key"] for d in sensors] == ["B-flow", "a-temp", "loose"]  # by code point
    a = sensors[1]
    assert a["platform"]["slug"] == "north"
    assert a["installation"]["name"] == "Module A"
    assert sensors[2]["platform"] is None
    assert sensors[2]["readings"] == []
    assert a["readings"][0] == ["2024-12-01T00:00:00.000000Z", -2.0]
    assert len(a["readings"]) == 7
    assert len(a["detections"]) == 7
    assert [e["anomaly_id"] for e in a["sensor_events"]] == [data["old"].id, data["new"].id]
    assert a["anomalies"][1]["acknowledged_by"] == data["user"].email
    buckets = [d for d in docs if d["type"] == "readings" and d["sensor"] == "a-temp"]
    assert [len(d["readings"]) for d in buckets] == [7, 7, 7, 2]  # 30 readings: 7 in the document, 23 after
    index = docs.index(a)
    assert all(d["sensor"] == "a-temp" for d in docs[index + 1 : index + 7])


def test_since_and_platform_filters(data, tmp_path):
    since = T0 + timedelta(minutes=25)
    path, exported = _export(tmp_path, since=since)
    assert exported.counts["readings"] == 5  # a-temp's minutes 25-29; B-flow ends at minute 8
    assert exported.counts["detections"] == 0
    # The old anomaly ended before `since`; the new one too (minute 12), but no event after since points at it.
    assert exported.counts["anomalies"] == 0
    assert exported.counts["sensor_events"] == 1  # B-flow's, one hour in
    assert exported.counts["sensors"] == 3
    assert exported.counts["platforms"] == 2

    path, exported = _export(tmp_path, name="north.jsonl", platform="north")
    assert exported.counts["sensors"] == 1
    assert exported.counts["platforms"] == 1
    assert exported.counts["installations"] == 1
    assert exported.counts["readings"] == 30
    _wipe()
    result = archive_import(path=path)
    assert list(Sensor.objects.values_list("key", flat=True)) == ["a-temp"]
    assert result.verified

    with pytest.raises(ApplicationError, match="No platform with the slug 'nowhere'"):
        _export(tmp_path, name="none.jsonl", platform="nowhere")


def test_since_keeps_the_anomaly_an_exported_event_points_to(data, tmp_path):
    SensorEventFactory(sensor=data["a"], kind=SensorEvent.Kind.OK, anomaly=data["old"], at=T0 + timedelta(hours=2))
    path, exported = _export(tmp_path, since=T0 + timedelta(hours=1))
    assert exported.counts["anomalies"] == 1
    assert exported.counts["sensor_events"] == 2
    _wipe()
    assert archive_import(path=path).verified
    assert SensorEvent.objects.get(at=T0 + timedelta(hours=2)).anomaly_id == data["old"].id


def test_command_refuses_a_non_empty_database_and_merges_when_told(data, tmp_path):
    path = tmp_path / "all.jsonl"
    call_command("export_data", "--output", str(path), verbosity=0)
    with pytest.raises(CommandError) as refused:
        call_command("import_data", str(path))
    message = str(refused.value)
    assert "\n" not in message
    assert "not empty" in message
    assert "--merge" in message
    assert Reading.objects.count() == 39

    # Lose a few rows, then merge them back: the rest is counted as skipped duplicates.
    Reading.objects.filter(sensor=data["a"], timestamp__gte=T0 + timedelta(minutes=20)).delete()
    SensorEvent.objects.filter(anomaly=data["old"]).delete()
    data["old"].delete()
    data["b"].delete()  # its readings and event go with it
    out = io.StringIO()
    call_command("import_data", str(path), "--merge", stdout=out, stderr=io.StringIO())
    assert Reading.objects.count() == 39
    assert Anomaly.objects.count() == 2
    assert Sensor.objects.filter(key="B-flow").exists()
    lines = {line.split()[0]: line.split() for line in out.getvalue().splitlines()[1:9]}
    assert lines["readings"][1:4] == ["39", "19", "20"]  # rows, inserted, skipped
    assert lines["sensors"][1:4] == ["3", "1", "2"]
    assert lines["anomalies"][1:4] == ["2", "1", "1"]
    assert lines["sensor_events"][1:4] == ["3", "2", "1"]
    assert "Merged" in out.getvalue()
    restored = Anomaly.objects.get(started_at=data["old"].started_at)
    assert SensorEvent.objects.get(anomaly=restored).sensor_id == data["a"].id


def test_users_that_are_not_here_are_left_empty_and_counted(data, tmp_path):
    path, _ = _export(tmp_path)
    _wipe()
    data["user"].delete()
    result = archive_import(path=path)
    assert result.verified  # user links are outside the checksums
    assert result.users_missing == 1
    assert Anomaly.objects.get(id=data["new"].id).acknowledged_by is None


def _lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def test_bad_files_name_the_line_and_write_nothing(data, tmp_path):
    path, _ = _export(tmp_path)
    _wipe()
    lines = _lines(path)

    def attempt(text, name="bad.jsonl"):
        bad = tmp_path / name
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(CommandError) as error:
            call_command("import_data", str(bad), stderr=io.StringIO())
        for model in ARCHIVE_MODELS:
            assert not model.objects.exists(), model
        return str(error.value)

    broken = [*lines]
    broken[4] = broken[4][:-5]
    assert attempt("\n".join(broken)).startswith("bad.jsonl: line 5: not JSON")

    assert f"line {len(lines) - 1}: the file ends before its trailer" in attempt("\n".join(lines[:-1]))

    wrong_type = [*lines]
    doc = json.loads(wrong_type[3])
    doc["readings"][0][1] = "hot"
    wrong_type[3] = json.dumps(doc)
    assert "line 4: value must be a number, not 'hot'" in attempt("\n".join(wrong_type))

    tampered = [*lines]
    doc = json.loads(tampered[3])
    doc["readings"][0][1] += 1
    tampered[3] = json.dumps(doc)
    message = attempt("\n".join(tampered))
    assert "trailer: readings" in message
    assert "changed or damaged" in message

    duplicate = [*lines]
    doc = json.loads(duplicate[3])
    doc["readings"][1][0] = doc["readings"][0][0]
    duplicate[3] = json.dumps(doc)
    assert "line 4: refused by the database" in attempt("\n".join(duplicate))

    assert "line 1: not a Sensorhub archive" in attempt('{"hello": 1}\n')


def test_bad_csv_cell_names_file_and_line(data, tmp_path):
    path, _ = _export(tmp_path, name="archive.zip", format="csv")
    _wipe()
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(bad, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "readings.csv":
                rows = content.decode().splitlines()
                rows[3] = rows[3].rsplit(",", 1)[0] + ",warm"
                content = ("\n".join(rows) + "\n").encode()
            target.writestr(item.filename, content)
    with pytest.raises(CommandError, match=r"bad.zip: readings.csv line 4: value: 'warm' is not a float"):
        call_command("import_data", str(bad), stderr=io.StringIO())
    assert not Sensor.objects.exists()


def test_csv_layout_is_one_file_per_table_with_a_manifest(data, tmp_path):
    path, exported = _export(tmp_path, name="archive.zip", format="csv")
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == sorted([f"{t}.csv" for t in exported.counts] + ["manifest.json"])
        manifest = json.loads(archive.read("manifest.json"))
        readings = archive.read("readings.csv").decode().splitlines()
        sensors = archive.read("sensors.csv").decode().splitlines()
    assert manifest["counts"] == exported.counts
    assert manifest["checksums"] == exported.checksums
    assert readings[0] == "sensor,timestamp,value"
    assert readings[1] == "B-flow,2024-12-01T00:00:00.000000Z,-2.0"
    assert sensors[0].startswith("id,key,name,platform_id,installation_id")


def test_export_to_stdout_streams_the_document_and_keeps_progress_on_stderr(data):
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    err = io.StringIO()
    call_command("export_data", "--platform", "south", stdout=out, stderr=err)
    out.flush()
    text = out.buffer.getvalue().decode()
    assert [json.loads(line)["type"] for line in text.splitlines()] == [
        "header",
        "platform",
        "sensor",
        "readings",
        "trailer",
    ]
    assert "Exported 1 platforms" in err.getvalue()


def test_export_command_rejects_a_naive_since(data):
    with pytest.raises(CommandError, match="needs a UTC offset"):
        call_command("export_data", "--since", "2024-12-01T00:00:00", stdout=io.StringIO())


@pytest.mark.parametrize(
    "row",
    [
        ["k", "2024-12-01T00:00:00.000000Z", 0.1 + 0.2],
        ["k", "2024-12-01T00:00:00.000000Z", -0.0],
        ["k", "2024-12-01T00:00:00.000000Z", 1e300],
        ["k", "2024-12-01T00:00:00.000000Z", float("nan")],
        ["k", "2024-12-01T00:00:00.000000Z", float("-inf")],
        ["k", "2024-12-01T00:00:00.000000Z", None, 3.0, "undefined"],
        ["k", "2024-12-01T00:00:00.000000Z", 12.5, None, "critical"],
    ],
)
def test_hand_formatted_series_items_equal_the_canonical_json(row):
    from archive.services.export import _series_items
    from archive.services.tables import Digest, dumps

    digest, canonical = Digest(), Digest()
    assert _series_items('"k"', [row], digest) == dumps(row[1:])
    canonical.add_line(dumps(row))
    assert digest.hexdigest == canonical.hexdigest


def test_postgresql_formats_series_rows_as_python_does(data, monkeypatch, postgresql):
    """On PostgreSQL the canonical instants come from to_char; they must equal Python's for the same rows (the SQL
    path is PostgreSQL's; SQLite always takes the ORM path)."""
    from django.db import connection

    from archive.services import export

    Reading.objects.create(sensor=data["c"], timestamp=datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), value=1)
    Reading.objects.create(sensor=data["c"], timestamp=datetime(2024, 2, 29, 0, 0, 0, 1, tzinfo=UTC), value=2)
    compared = 0
    for model, table in ((Reading, export.READINGS), (Detection, export.DETECTIONS)):
        for sensor in (data["a"], data["c"]):
            for since in (None, T0 + timedelta(minutes=3)):
                args = {"sensor_id": sensor.id, "key": sensor.key, "since": since}
                by_sql = list(export._series_pages(model, table, **args))
                monkeypatch.setattr(connection, "vendor", "postgresql-but-orm")
                by_orm = list(export._series_pages(model, table, **args))
                monkeypatch.undo()
                monkeypatch.setattr("archive.services.export.BUCKET", 7)
                assert by_sql == by_orm
                compared += sum(len(page) for page in by_sql)
    assert compared == 30 + 27 + 2 + 20 + 17  # every series row of a-temp and loose, with and without since


def test_import_rebuilds_the_hourly_roll_ups_the_bucketed_queries_read(data, tmp_path):
    path, _ = _export(tmp_path)
    _wipe()
    ReadingHourly.objects.all().delete()

    archive_import(path=path)

    a = Sensor.objects.get(key="a-temp")
    hourly = readings_bucketed(sensor=a, bucket="1h", agg="count", start=T0, end=T0 + timedelta(hours=2))
    assert sum(item.value for item in hourly) == 30
    assert ReadingHourly.objects.aggregate(total=Sum("count"))["total"] == Reading.objects.count() == 39
