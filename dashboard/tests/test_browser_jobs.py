"""In headless Chromium against the running ASGI app (common/tests/browser.py), with a real Celery worker on the
test database (PostgreSQL): an operator uploads a CSV and watches the progress bar reach 100 %, then reads the
summary; the jobs page shows the job and follows a running one without reload; both pages at 375 and 1920 px.

Embedded mode (SQLite, filesystem broker) is not run here: SQLite's test database lives in this process's memory,
where no worker process can reach it. The same page and task run there unchanged (`make run`), the broker being
the only difference, and the worker's half is the same code as on PostgreSQL."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from playwright.sync_api import expect

from common.models import Job
from common.tests.browser import SCREENSHOT_DIR
from config.celery_app import app as celery_app
from conftest import celery_worker_process
from sensors.models import Reading
from sensors.tests.factories import ReadingFactory, SensorFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=connection.vendor == "postgresql"),
]

ROWS = 60_000  # about 2 MB: the import takes seconds, so the bar is seen moving
# Screenshots of the pages with jobs in them, beside those of test_screenshots.py (same folder, same switch).
SHOTS = SCREENSHOT_DIR


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def csv_bytes(rows: int) -> bytes:
    first = datetime(2024, 12, 1, tzinfo=UTC)
    lines = ["timestamp,value"]
    lines += [f"{(first + timedelta(seconds=n)).isoformat()},{n % 97}" for n in range(rows)]
    lines.insert(3, "2024-12-01T00:00:02Z,not a number")  # line 4 of the file: a bad row
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def import_worker(redis_url, process_database_url):
    """A real `celery worker` on the test broker and the test database."""
    celery_app.control.purge()  # jobs left queued by an earlier, interrupted run are not this test's
    env = {"CI": "true", "DATABASE_URL": process_database_url, "REDIS_URL": redis_url, "JOBS_PROGRESS_INTERVAL": "0.2"}
    with celery_worker_process(name="browser-import", env=env) as process:
        yield process


def test_an_operator_uploads_a_csv_and_watches_the_bar_reach_100_percent(browser_page, import_worker, operator):
    sensor = SensorFactory(key="tank-1", unit="m")
    ReadingFactory(sensor=sensor, timestamp=datetime(2024, 12, 1, tzinfo=UTC), value=1.0)  # one duplicate
    page = browser_page(operator, width=1920, height=1080)
    page.goto("/")
    page.get_by_test_id("nav-import").click()
    expect(page.get_by_role("heading", name="Import readings from a CSV file")).to_be_visible()

    page.get_by_label("CSV file").set_input_files(
        {"name": "levels.csv", "mimeType": "text/csv", "buffer": csv_bytes(ROWS)}
    )
    page.get_by_label("Sensor").select_option("tank-1")
    page.get_by_role("button", name="Import").click()

    bar = page.get_by_test_id("job-bar")
    expect(bar).to_be_visible()
    job = Job.objects.get()
    assert page.url.endswith(f"/dashboard/import/?job={job.pk}")
    # Watch the bar: its values as the page draws them, until the job ends.
    values: list[float] = []
    deadline = time.monotonic() + 120
    while Job.objects.get(pk=job.pk).is_active or not values or values[-1] < 100:
        state = page.evaluate(
            "() => { const b = document.querySelector('[data-testid=job-bar]');"
            " return b && b.hasAttribute('value') ? b.value : null; }"
        )
        if state is not None and (not values or values[-1] != state):
            values.append(state)
        if values and values[-1] == 100:
            break
        assert time.monotonic() < deadline, values
        page.wait_for_timeout(50)
    assert values[-1] == 100, values
    assert any(0 < value < 100 for value in values), values  # it moved on the page, not only jumped to the end
    expect(page.get_by_test_id("job-percent")).to_have_text("100 %")

    # The page reloads once the job ends and shows what it did.
    expect(page.get_by_test_id("summary-stored")).to_have_text(str(ROWS - 1), timeout=15_000)
    expect(page.get_by_test_id("summary-duplicates")).to_have_text("1")
    expect(page.get_by_test_id("summary-rejected")).to_have_text("1")
    expect(page.get_by_test_id("bad-rows")).to_contain_text("line 4: value: 'not a number' is not a number.")
    expect(page.get_by_test_id("job-state")).to_have_text("Succeeded")
    assert Reading.objects.filter(sensor=sensor).count() == ROWS
    shot(page, "import-done-desktop")

    # The jobs page lists it with its bar at 100 %, who started it and when.
    page.goto("/dashboard/jobs/")
    row = page.locator(f'tr[data-job-id="{job.pk}"]')
    expect(row).to_contain_text("CSV import of levels.csv into tank-1")
    expect(row).to_contain_text("Succeeded")
    expect(row).to_contain_text("100 %")
    expect(row).to_contain_text(operator.email)
    shot(page, "jobs-running-desktop")


def test_the_jobs_page_follows_a_running_job_and_shows_a_failure_at_phone_width(browser_page, viewer, operator):
    # No worker: the test plays the worker's part by writing the rows the toolkit writes.
    now = datetime.now(tz=UTC)
    Job.objects.create(
        id="failed-job",
        kind="detection.select_baselines",
        label="Baseline selection (all sensors)",
        state="failed",
        percent=40,
        error="Lost: no sign of life from its worker since 2026-12-03 10:00:00 (the worker stopped or was killed).",
        finished_at=now,
    )
    Job.objects.create(
        id="running-job",
        kind="sensors.import_readings",
        label="CSV import of levels.csv into tank-1",
        state="running",
        percent=10,
        message="1,000 rows read",
        started_by=operator,
        started_at=now,
        heartbeat_at=now,
    )
    page = browser_page(viewer, width=375, height=800)
    page.goto("/dashboard/jobs/")
    running = page.locator('tr[data-job-id="running-job"]')
    expect(running).to_contain_text("10 %")
    expect(page.locator('tr[data-job-id="failed-job"]')).to_contain_text("Lost: no sign of life from its worker")
    expect(page.get_by_role("link", name="Import")).to_have_count(0)  # viewers see no upload link

    Job.objects.filter(pk="running-job").update(percent=70, message="7,000 rows read")
    expect(running).to_contain_text("70 %")  # without reload
    expect(running).to_contain_text("7,000 rows read")
    Job.objects.filter(pk="running-job").update(state="succeeded", percent=100, finished_at=now)
    expect(running).to_contain_text("Succeeded")
    expect(running).to_contain_text("100 %")
    # Nothing wider than the phone's screen.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    shot(page, "jobs-running-phone")

    page = browser_page(operator, width=375, height=800)
    page.goto("/dashboard/import/")
    expect(page.get_by_role("button", name="Import")).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    shot(page, "import-done-phone")
