"""`job_enqueue`: by task name, after commit by default, on the real Redis broker."""

import json
import uuid

import pytest
import redis

from common.jobs import job_enqueue

pytestmark = pytest.mark.django_db

TASK = "common.tests.no_such_task"  # sent by name: no task of that name needs to exist to queue it


@pytest.fixture
def broker(redis_url):
    """The broker's Redis; the queues a test used are deleted afterwards."""
    client = redis.Redis.from_url(redis_url)
    used: list[str] = []
    yield client, used
    for queue in used:
        client.delete(queue)
    client.close()


def messages(client, queue: str) -> list[dict]:
    return [json.loads(raw) for raw in client.lrange(queue, 0, -1)]


def test_a_job_is_sent_by_name_once_the_transaction_commits(broker, django_capture_on_commit_callbacks):
    client, used = broker
    queue = f"test-jobs-{uuid.uuid4().hex[:8]}"
    used.append(queue)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job_id = job_enqueue(task=TASK, kwargs={"n": 1}, queue=queue)
    assert messages(client, queue) == [], "nothing is sent before the commit"

    [callback] = callbacks
    callback()
    [message] = messages(client, queue)
    assert message["headers"]["task"] == TASK
    assert message["headers"]["id"] == job_id


def test_after_commit_false_sends_at_once_with_the_given_kwargsrepr(broker, django_capture_on_commit_callbacks):
    client, used = broker
    queue = f"test-jobs-{uuid.uuid4().hex[:8]}"
    used.append(queue)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job_id = job_enqueue(task=TASK, kwargs={"n": 2}, queue=queue, kwargsrepr="{one number}", after_commit=False)
    assert callbacks == []
    [message] = messages(client, queue)
    assert (message["headers"]["id"], message["headers"]["kwargsrepr"]) == (job_id, "{one number}")
