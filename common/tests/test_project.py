"""Project wiring: production settings, schedules, the ASGI application."""

import os
import re
import subprocess
import sys

import pytest
from channels.testing import HttpCommunicator
from django.conf import settings
from django.core.management.utils import get_random_secret_key
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from config.celery_app import app as celery_app


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


PROD_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.prod",
    "DJANGO_SECRET_KEY": get_random_secret_key() + get_random_secret_key(),
    "DATABASE_URL": "postgres://sensorhub:secret@db.internal:5432/sensorhub",
    "DJANGO_ALLOWED_HOSTS": "sensorhub.example.com",
}


def test_production_settings_pass_check_deploy_without_warnings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PROD_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_secret_key_starting_with_a_dollar_is_taken_as_it_is():
    # django-environ reads "$NAME" as a reference to the variable NAME; Django's own key generator starts a key
    # with "$" once in 50. The key must be used as given, never looked up.
    key = "$" + get_random_secret_key()
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    result = run_manage("shell", "-c", code, env={**PROD_ENV, "DJANGO_SECRET_KEY": key})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == key


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DATABASE_URL", "DJANGO_ALLOWED_HOSTS"])
def test_production_settings_have_no_defaults_for_secrets(missing):
    env = {k: v for k, v in PROD_ENV.items() if k != missing}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert missing in result.stderr


@pytest.mark.django_db
def test_every_periodic_task_names_a_registered_celery_task():
    celery_app.loader.import_default_modules()
    tasks = list(PeriodicTask.objects.values_list("name", "task"))
    assert tasks, "the data migrations create at least one schedule"
    for name, task in tasks:
        assert task in celery_app.tasks, f"schedule {name!r} names unknown task {task!r}"


@pytest.mark.django_db
def test_schedules_edited_in_the_admin_survive_a_beat_start(monkeypatch):
    # The scheduler closes "old" connections between ticks; inside the test's transaction that would close the
    # test's own connection, so only that call is turned off here.
    monkeypatch.setattr("django_celery_beat.schedulers.close_old_connections", lambda: None)
    task = PeriodicTask.objects.get(name="Purge expired API tokens")
    edited, _ = CrontabSchedule.objects.get_or_create(minute="15", hour="5", timezone="UTC")
    task.crontab = edited
    task.save()
    DatabaseScheduler(app=celery_app)  # what `celery beat` does at start: set up its schedule
    task.refresh_from_db()
    assert (task.crontab.hour, task.crontab.minute) == ("5", "15")
    # Nothing is declared in Celery's own config that beat could write back over staff edits.
    assert not celery_app.conf.beat_schedule


@pytest.mark.asyncio
async def test_asgi_application_serves_http():
    from config.asgi import application

    communicator = HttpCommunicator(application, "GET", "/healthcheck/live", headers=[(b"host", b"localhost")])
    response = await communicator.get_response()
    assert response["status"] == 200


def test_openapi_schema_is_valid_and_generates_without_warnings(tmp_path):
    from io import StringIO

    from django.core.management import call_command

    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"), stderr=StringIO()
    )
    assert "/api/v1/users/me/" in (tmp_path / "schema.yml").read_text()


def test_every_environment_variable_is_in_env_example_and_the_readme():
    settings_dir = settings.BASE_DIR / "config" / "settings"
    source = "".join(path.read_text() for path in settings_dir.glob("*.py"))
    names = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', source))
    assert {"DATABASE_URL", "REDIS_URL", "SENSORS_AUTO_REGISTER", "RATES_PROVIDERS"} <= names  # the pattern works
    example = (settings.BASE_DIR / ".env.example").read_text()
    readme = (settings.BASE_DIR / "README.md").read_text()
    assert sorted(name for name in names if f"{name}=" not in example) == []
    assert sorted(name for name in names if f"`{name}`" not in readme) == []
