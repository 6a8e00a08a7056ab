"""Open sockets lose their stream with their rights (docs/api.md, "Live streams"): a revoked token, a removed role,
a deactivated account or an ended session closes the socket (4401 no valid credentials, 4403 no role), at once
when the change goes through accounts' services or the admin, and within LIVE_RECHECK_SECONDS otherwise.

Real channel layer (Redis) and the real ASGI application, as in test_consumers.py."""

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.urls import reverse
from knox.models import AuthToken

from accounts.models import User
from accounts.services import api_token_create, api_token_revoke, user_set_role
from accounts.tests.factories import UserFactory
from sensors.ingest import readings_ingest
from sensors.models import Transport
from sensors.tests.factories import SensorFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.usefixtures("role_groups", "live_groups_restored"),
]

KEY = "rights.gauge"
PATH = f"/ws/sensors/{KEY}/readings/"
T0 = datetime(2024, 12, 1, tzinfo=UTC)
_first_readings = itertools.count(1000)  # each socket opened proves it streams with a reading of its own


@database_sync_to_async
def ingest(numbers) -> None:
    messages = [{"sensor": KEY, "timestamp": (T0 + timedelta(seconds=i)).isoformat(), "value": 1.0} for i in numbers]
    assert readings_ingest(messages=messages, transport=Transport.REST).stored == len(messages)


@pytest.fixture
def sensor():
    return SensorFactory(key=KEY)


async def open_live(ws_open, headers) -> object:
    communicator, first = await ws_open(PATH, headers)
    assert first["type"] == "history", first
    return communicator


async def assert_streaming(*communicators) -> None:
    await ingest([next(_first_readings)])
    for communicator in communicators:
        assert (await communicator.receive_json_from(timeout=5))["type"] == "readings"


async def assert_closed(communicator, code: int, *, timeout: float = 5) -> None:
    """The error message with its code, then the close frame; afterwards nothing, even when readings arrive."""
    message = await communicator.receive_json_from(timeout=timeout)
    assert message == {"type": "error", "code": code, "detail": message["detail"]}, message
    assert await communicator.receive_output(timeout=timeout) == {"type": "websocket.close", "code": code}
    await ingest([next(_first_readings), next(_first_readings)])
    assert await communicator.receive_nothing(timeout=0.5)
    await asyncio.sleep(0.05)
    await communicator.disconnect(code=code)


async def test_revoking_the_token_closes_its_socket(sensor, ws_headers, ws_open):
    user = await database_sync_to_async(UserFactory)(viewer=True)
    token, raw = await database_sync_to_async(api_token_create)(user=user)
    communicator = await open_live(ws_open, ws_headers(token=raw))
    await assert_streaming(communicator)
    await database_sync_to_async(api_token_revoke)(token=token)
    await assert_closed(communicator, 4401)


async def test_revoking_one_token_leaves_the_users_other_sockets_open(sensor, ws_headers, ws_open):
    user = await database_sync_to_async(UserFactory)(viewer=True)
    revoked, raw_revoked = await database_sync_to_async(api_token_create)(user=user)
    _, raw_kept = await database_sync_to_async(api_token_create)(user=user)
    closing = await open_live(ws_open, ws_headers(token=raw_revoked))
    staying = await open_live(ws_open, ws_headers(token=raw_kept))
    await assert_streaming(closing, staying)
    await database_sync_to_async(api_token_revoke)(token=revoked)
    await assert_closed(closing, 4401)
    # The other socket was checked too and kept its rights: it received the readings `assert_closed` stored.
    assert len((await staying.receive_json_from(timeout=5))["readings"]) == 2
    await staying.disconnect()


async def test_removing_the_viewer_role_closes_the_socket(sensor, ws_headers, ws_open):
    user = await database_sync_to_async(UserFactory)(viewer=True)
    _, raw = await database_sync_to_async(api_token_create)(user=user)
    by_token = await open_live(ws_open, ws_headers(token=raw))
    by_session = await open_live(ws_open, await sync_to_async(ws_headers)(user=user))
    await assert_streaming(by_token, by_session)
    await database_sync_to_async(user_set_role)(user=user, role=None)
    await assert_closed(by_token, 4403)
    await assert_closed(by_session, 4403)


async def test_deactivating_the_account_in_the_admin_closes_its_sockets(sensor, ws_headers, ws_open, admin_client):
    user = await database_sync_to_async(UserFactory)(viewer=True)
    communicator = await open_live(ws_open, await sync_to_async(ws_headers)(user=user))
    await assert_streaming(communicator)

    def deactivate() -> None:
        url = reverse("admin:accounts_user_change", args=[user.pk])
        form = {"email": user.email, "is_active": "", "groups": [g.pk for g in user.groups.all()]}
        form.update(
            {"first_name": "", "last_name": "", "last_login_0": "", "last_login_1": "", "date_joined_0": "2024-12-01"}
        )
        form["date_joined_1"] = "00:00:00"
        response = admin_client.post(url, form)
        assert response.status_code == 302, response.context["adminform"].form.errors
        assert not User.objects.get(pk=user.pk).is_active

    await sync_to_async(deactivate)()
    await assert_closed(communicator, 4401)


async def test_changes_outside_the_services_are_seen_within_the_recheck_interval(sensor, ws_headers, ws_open, settings):
    """A token deleted behind the services' back (a database shell, an expiry) is found by the periodic check."""
    settings.LIVE_RECHECK_SECONDS = 0.5
    user = await database_sync_to_async(UserFactory)(viewer=True)
    token, raw = await database_sync_to_async(api_token_create)(user=user)
    communicator = await open_live(ws_open, ws_headers(token=raw))
    await assert_streaming(communicator)
    await database_sync_to_async(AuthToken.objects.filter(pk=token.pk).delete)()
    await assert_closed(communicator, 4401, timeout=3)


async def test_a_session_logged_out_elsewhere_is_seen_within_the_recheck_interval(
    sensor, ws_headers, ws_open, settings
):
    from django.contrib.sessions.models import Session

    settings.LIVE_RECHECK_SECONDS = 0.5
    user = await database_sync_to_async(UserFactory)(viewer=True)
    communicator = await open_live(ws_open, await sync_to_async(ws_headers)(user=user))
    await assert_streaming(communicator)
    await database_sync_to_async(Session.objects.all().delete)()  # e.g. "log out everywhere"
    await assert_closed(communicator, 4401, timeout=3)
