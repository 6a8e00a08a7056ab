from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sensors.models import Reading, RejectedMessage
from sensors.services.csv_import import readings_import_csv
from sensors.tests.factories import ReadingFactory, SensorFactory

pytestmark = pytest.mark.django_db

DIRTY = """\ufefftimestamp , VALUE,sensor
2024-12-01 00:00:00, 1.5 ,temperature

  2024-12-01T00:01:00Z,2,temperature
# a comment line
2024-12-01 00:02:00,abc,temperature
2024-12-01 00:03:00,3
2024-12-01 00:04:00,nan,temperature
not a time,4,temperature
2024-12-01 00:00:00,9,temperature
,,
"2024-12-01 00:05:00","5","humidity"
2024-12-01 00:06:00,6,temperature,extra
"""


def run(path, *args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_readings", str(path), "--no-progress", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_dirty_file_is_cleaned_and_bad_rows_reported_with_line_numbers(tmp_path):
    SensorFactory(key="temperature")
    SensorFactory(key="humidity")
    path = tmp_path / "dirty.csv"
    path.write_text(DIRTY, encoding="utf-8")

    out, err = run(path)

    stored = {(r.sensor.key, r.timestamp.minute, r.value) for r in Reading.objects.select_related("sensor")}
    assert stored == {("temperature", 0, 1.5), ("temperature", 1, 2.0), ("humidity", 5, 5.0)}
    assert err.splitlines() == [
        "line 6: value: 'abc' is not a number.",
        "line 7: expected 3 columns (timestamp,value,sensor), found 2",
        "line 8: value: Must be a finite number (not NaN or infinity).",
        "line 9: timestamp: 'not a time' is not an ISO 8601 date and time.",
        "line 13: expected 3 columns (timestamp,value,sensor), found 4",
    ]
    assert "9 rows, 3 stored, 1 duplicates, 5 bad, 3 blank or comment lines skipped" in out
    assert RejectedMessage.objects.filter(transport="csv").count() == 5


def test_without_header_and_with_sensor_option(tmp_path):
    SensorFactory(key="level-1")
    path = tmp_path / "plain.csv"
    path.write_text("2024-12-01 00:00:00,1\n2024-12-01 00:01:00,2\n", encoding="utf-8")

    out, _ = run(path, "--sensor", "level-1")

    assert Reading.objects.filter(sensor__key="level-1").count() == 2
    assert "2 rows, 2 stored" in out


def test_reimport_counts_duplicates_and_keeps_stored_values(tmp_path):
    sensor = SensorFactory(key="t")
    ReadingFactory(sensor=sensor, timestamp=datetime(2024, 12, 1, tzinfo=UTC), value=42)
    path = tmp_path / "again.csv"
    path.write_text("timestamp,value\n2024-12-01 00:00:00,1\n2024-12-01 00:01:00,2\n", encoding="utf-8")

    run(path, "--sensor", "t")
    out, _ = run(path, "--sensor", "t")

    assert "0 stored, 2 duplicates" in out
    assert Reading.objects.get(timestamp=datetime(2024, 12, 1, tzinfo=UTC)).value == 42


def test_row_naming_another_sensor_than_the_option_is_bad(tmp_path):
    SensorFactory(key="a")
    path = tmp_path / "mixed.csv"
    path.write_text("timestamp,value,sensor\n2024-12-01 00:00:00,1,a\n2024-12-01 00:01:00,2,b\n", encoding="utf-8")

    _, err = run(path, "--sensor", "a")

    assert Reading.objects.count() == 1
    assert "line 3: sensor: The message names sensor 'b' but was sent for 'a'." in err


def test_chunks_report_the_right_line_numbers():
    SensorFactory(key="s")
    lines = ["timestamp,value\n"] + [f"2024-12-01T00:{i // 60:02d}:{i % 60:02d},{i}\n" for i in range(250)]
    lines[200] = "2024-12-01T09:00:00,oops\n"  # line 201 of the file

    report = readings_import_csv(lines=lines, sensor_key="s", chunk_size=64)

    assert report.result.stored == 249
    assert report.errors == [(201, "value: 'oops' is not a number.")]


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("timestamp,value\n2024-12-01 00:00:00,1\n", [], "no sensor column"),
        (None, [], "Cannot read"),
    ],
)
def test_command_errors_are_one_line(tmp_path, content, args, message):
    path = tmp_path / "file.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(CommandError, match=message):
        run(path, *args)


def test_not_utf8_is_a_command_error(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("timestamp,value,sensor\n2024-12-01 00:00:00,1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(CommandError, match="not UTF-8"):
        run(path)


def test_semicolons_and_windows_line_endings(tmp_path):
    SensorFactory(key="s")
    path = tmp_path / "excel.csv"
    path.write_bytes(b"timestamp;value\r\n2024-12-01 00:00:00;1.5\r\n2024-12-01 00:01:00;2\r\n")

    out, _ = run(path, "--sensor", "s", "--delimiter", ";")

    assert sorted(Reading.objects.values_list("value", flat=True)) == [1.5, 2.0]
    assert "2 rows, 2 stored" in out


def test_delimiter_must_be_one_character(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("timestamp,value\n", encoding="utf-8")
    with pytest.raises(CommandError, match="one character"):
        run(path, "--sensor", "s", "--delimiter", ";;")


def test_rows_the_csv_parser_cannot_read_are_bad_rows_and_the_import_goes_on(tmp_path):
    SensorFactory(key="s")
    path = tmp_path / "huge-field.csv"
    huge = "x" * 200_000
    path.write_text(
        f'timestamp,value\n2024-12-01 00:00:00,1\n"{huge}",2\n2024-12-01 00:02:00,3\n2024-12-01 00:03:00,4\x00\n',
        encoding="utf-8",
    )

    out, err = run(path, "--sensor", "s")

    assert sorted(Reading.objects.values_list("value", flat=True)) == [1.0, 3.0]
    assert "line 3: unreadable CSV: field larger than field limit" in err
    assert "line 5: value:" in err
    assert "4 rows, 2 stored, 0 duplicates, 2 bad" in out
