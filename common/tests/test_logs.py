"""Celery's routine task lines of the quiet tasks are not logged; everything else is (common/logs.py)."""

import logging
from logging.config import dictConfig

import pytest
from celery.app.trace import LOG_FAILURE, LOG_RECEIVED, LOG_SUCCESS
from django.conf import settings


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def lines():
    """The project's LOGGING applied, and what Celery's two loggers let through."""
    dictConfig(settings.LOGGING)
    collect = Collect()
    loggers = [logging.getLogger("celery.worker.strategy"), logging.getLogger("celery.app.trace")]
    for logger in loggers:
        logger.addHandler(collect)
        logger.setLevel(logging.INFO)
    yield collect.messages
    for logger in loggers:
        logger.removeHandler(collect)


def _task(name: str) -> dict:
    return {"id": "1d2e", "name": name, "runtime": 0.01, "return_value": None, "exc": "boom", "description": "x"}


def test_the_detect_tasks_routine_lines_are_dropped(lines):
    assert "detection.detect_readings" in settings.LOG_QUIET_TASKS
    logging.getLogger("celery.worker.strategy").info(LOG_RECEIVED, _task("detection.detect_readings"))
    logging.getLogger("celery.app.trace").info(LOG_SUCCESS, _task("detection.detect_readings"))
    assert lines == []


def test_its_failures_and_other_tasks_lines_are_kept(lines):
    logging.getLogger("celery.app.trace").error(LOG_FAILURE, _task("detection.detect_readings"))
    logging.getLogger("celery.worker.strategy").info(LOG_RECEIVED, _task("rates.update_rates"))
    logging.getLogger("celery.app.trace").info(LOG_SUCCESS, _task("rates.update_rates"))
    assert len(lines) == 3
    assert "detection.detect_readings" in lines[0]
    assert lines[1] == "Task rates.update_rates[1d2e] received"


def test_the_embedded_broker_starts_without_a_warning(caplog):
    """Every process of the embedded mode (worker, detect, beat, simulator) opened its broker with kombu's "No
    hostname was supplied" warning."""
    from kombu import Connection

    from config.settings.base import EMBEDDED_BROKER_URL

    with caplog.at_level(logging.WARNING, logger="kombu.connection"):
        Connection(EMBEDDED_BROKER_URL).info()
    assert caplog.records == []
