"""The processes `make run` starts (common/processes.py, `manage.py list_processes`, the Makefile's run target)."""

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from common.processes import processes_choose, procfile_names

PROCFILE = settings.BASE_DIR / "Procfile"


def test_embedded_mode_starts_the_simulator_and_no_consumer():
    assert processes_choose(redis_url="", mqtt_url="") == ["web", "worker", "detect", "beat", "simulate"]


def test_with_redis_the_stream_and_pubsub_consumers_start_too():
    names = processes_choose(redis_url="redis://127.0.0.1:6379/0", mqtt_url="")
    assert names[-2:] == ["ingest", "ingest-pubsub"]
    assert "ingest-mqtt" not in names


def test_with_mqtt_its_consumer_starts():
    assert processes_choose(redis_url="", mqtt_url="mqtt://127.0.0.1:1883")[-1] == "ingest-mqtt"


def test_the_procfile_declares_every_process_and_the_consumers_run_consume_readings():
    lines = dict(line.split(":", 1) for line in PROCFILE.read_text().splitlines() if line.strip())
    assert set(processes_choose(redis_url="r", mqtt_url="m")) == set(procfile_names(PROCFILE))
    assert lines["ingest"].split()[-3:] == ["consume_readings", "--source", "stream"]
    assert lines["ingest-pubsub"].split()[-3:] == ["consume_readings", "--source", "pubsub"]
    assert lines["ingest-mqtt"].split()[-3:] == ["consume_readings", "--source", "mqtt"]


def test_the_command_prints_the_names_for_the_settings(capsys, settings):
    settings.REDIS_URL, settings.MQTT_URL = "", ""
    call_command("list_processes")
    assert capsys.readouterr().out.split() == ["web", "worker", "detect", "beat", "simulate"]
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    call_command("list_processes")
    assert capsys.readouterr().out.split()[-2:] == ["ingest", "ingest-pubsub"]


def test_the_command_refuses_a_procfile_without_a_chosen_process(tmp_path, settings):
    settings.REDIS_URL, settings.MQTT_URL = "redis://127.0.0.1:6379/0", ""
    procfile = tmp_path / "Procfile"
    procfile.write_text("web: python manage.py runserver\n")
    with pytest.raises(CommandError, match="declares no process named worker, detect, beat, simulate, ingest"):
        call_command("list_processes", procfile=str(procfile))


def test_the_makefile_starts_what_the_command_prints():
    recipe = (settings.BASE_DIR / "Makefile").read_text().split("\nrun: ", 1)[1].split("\n\n", 1)[0]
    assert "manage.py list_processes" in recipe
    assert "manage.py fetch_rates --demo-if-offline" in recipe  # rates/tests/test_demo.py tests the command
    assert "honcho start --procfile Procfile --port $(PORT) $$PROCESSES" in recipe
