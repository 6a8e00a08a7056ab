"""What the data migrations leave: currencies with their minor units, and the twice-daily schedule."""

import pytest
from django.db import connection
from django_celery_beat.models import PeriodicTask

from config.celery_app import app as celery_app
from conftest import assert_schema_complete
from rates.models import Currency
from rates.tests.history import COLUMNS

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("code", "units"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("UGX", 0),
        ("XOF", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("CLF", 4),
        ("NGN", 2),
        ("XAU", None),
        ("BTC", 8),
    ],
)
def test_minor_units(code, units):
    assert Currency.objects.get(code=code).minor_units == units


def test_every_currency_the_providers_publish_is_known():
    xe_defaults = {"USD", "NGN", "GHS", "KES", "UGX", "MAD", "XOF", "EGP"}
    ecb_history = set(COLUMNS) | {"EUR"}
    assert xe_defaults | ecb_history <= set(Currency.objects.values_list("code", flat=True))


def test_schedule_twice_a_day_names_a_registered_task():
    task = PeriodicTask.objects.get(name="Update exchange rates")
    assert task.enabled
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == ("0", "1,23", "UTC")
    celery_app.loader.import_default_modules()
    assert task.task in celery_app.tasks


# Migrating backwards needs no open transaction (SQLite's schema editor refuses one); serialized_rollback puts
# the data migrations' rows back for the tests after this one. On SQLite the restore collides with the content
# types an earlier transactional test's flush re-created (as in test_worker.py); the migration re-creates the rows.
@pytest.mark.django_db(transaction=True, serialized_rollback=connection.vendor == "postgresql")
def test_schedule_and_currencies_are_reversible():
    from django.core.management import call_command

    call_command("migrate", "rates", "0001", verbosity=0)
    assert not PeriodicTask.objects.filter(name="Update exchange rates").exists()
    assert not Currency.objects.exists()
    # Every app: going back also unapplied other apps' migrations that depend on these, and the rest of the suite
    # runs on the whole schema.
    call_command("migrate", verbosity=0)
    assert_schema_complete()
    assert PeriodicTask.objects.filter(name="Update exchange rates").exists()
    assert Currency.objects.filter(code="EUR").exists()
