"""An account may be authenticated only while `user_can_authenticate` holds (active, approved, address confirmed):
no token is issued otherwise, and its existing tokens, sessions and sockets stop working."""

import re

import pytest
from allauth.account.models import EmailAddress
from asgiref.sync import sync_to_async
from django.core import mail
from django.test import Client, override_settings
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

TOKEN = reverse("accounts-api:token-obtain")
ME = reverse("accounts-api:user-me")
STRONG = "quiet-harbour-lantern-42"


def signed_up(email: str = "new@example.com") -> User:
    """An account made through the sign-up page, its address not confirmed."""
    response = Client().post(reverse("account_signup"), {"email": email, "password1": STRONG, "password2": STRONG})
    assert response.status_code == 302
    user = User.objects.get(email=email)
    assert not EmailAddress.objects.get(user=user).verified
    return user


def token_client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    return client


def test_no_token_for_an_unconfirmed_address():
    signed_up()
    response = APIClient().post(TOKEN, {"email": "new@example.com", "password": STRONG})
    assert response.status_code == 403, response.content
    assert response.json()["error"] == "account_unusable"
    assert not AuthToken.objects.exists()


def test_a_wrong_password_of_an_unconfirmed_account_is_still_invalid_credentials():
    signed_up()
    response = APIClient().post(TOKEN, {"email": "new@example.com", "password": "wrong"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_credentials"


def test_once_confirmed_the_account_gets_a_token():
    user = signed_up()
    EmailAddress.objects.filter(user=user).update(verified=True)
    assert APIClient().post(TOKEN, {"email": "new@example.com", "password": STRONG}).status_code == 201


def test_an_existing_token_of_an_unconfirmed_account_is_refused():
    user = signed_up()
    _, raw = AuthToken.objects.create(user=user)  # e.g. issued before this rule
    response = token_client(raw).get(ME)
    assert response.status_code == 401, response.content
    EmailAddress.objects.filter(user=user).update(verified=True)
    assert token_client(raw).get(ME).status_code == 200


def test_a_session_of_an_unconfirmed_account_is_refused(client_as):
    user = signed_up()
    assert client_as(user).get(ME).status_code in (401, 403)
    EmailAddress.objects.filter(user=user).update(verified=True)
    assert client_as(user).get(ME).status_code == 200


@override_settings(ACCOUNTS_REQUIRE_APPROVAL=True)
def test_no_token_while_approval_is_pending():
    user = signed_up("pending@example.com")
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body).group(0)
    Client().post(link)
    assert EmailAddress.objects.get(user=user).verified
    response = APIClient().post(TOKEN, {"email": "pending@example.com", "password": STRONG})
    assert response.status_code == 403
    assert response.json()["error"] == "account_unusable"


def test_accounts_made_by_staff_need_no_confirmation():
    UserFactory(email="made@example.com")
    assert APIClient().post(TOKEN, {"email": "made@example.com", "password": DEFAULT_PASSWORD}).status_code == 201


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("role_groups", "live_groups_restored")
async def test_sockets_of_an_unconfirmed_account_are_refused(ws_headers, ws_open):
    user = await sync_to_async(signed_up)("socket@example.com")
    _, raw = await sync_to_async(AuthToken.objects.create)(user=user)
    path = "/ws/events/system/"
    assert (await ws_open(path, ws_headers(token=raw)))[1] == 4401
    headers = await sync_to_async(ws_headers)(user=user)
    assert (await ws_open(path, headers))[1] == 4401
