from io import StringIO

import pytest
from allauth.account.models import EmailAddress
from django.core.management import CommandError, call_command
from django.test import Client
from knox.models import AuthToken

from accounts.models import User
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_create_api_token_prints_a_token_that_authenticates(api_client):
    user = UserFactory(email="device-owner@example.com", viewer=True)
    raw = run("create_api_token", "Device-Owner@example.com", "--days", "3").strip()
    token = AuthToken.objects.get(user=user)
    assert raw.startswith(token.token_key)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    assert api_client.get("/api/v1/users/me/").json()["email"] == user.email


def test_create_api_token_without_expiry():
    UserFactory(email="forever@example.com")
    run("create_api_token", "forever@example.com", "--no-expiry")
    assert AuthToken.objects.get().expiry is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody@example.com"], "No user with email"),
        (["inactive@example.com"], "Inactive, unapproved or unconfirmed accounts"),
        (["owner@example.com", "--days", "0"], "--days must be at least 1"),
    ],
)
def test_create_api_token_errors_are_one_readable_line(args, message):
    UserFactory(email="inactive@example.com", is_active=False)
    UserFactory(email="owner@example.com")
    with pytest.raises(CommandError, match=message):
        call_command("create_api_token", *args, stdout=StringIO(), stderr=StringIO())
    assert not AuthToken.objects.exists()


def test_create_demo_admin_once():
    first = run("create_demo_admin", "--email", "demo@example.com", "--site", "http://127.0.0.1:8123/")
    assert "http://127.0.0.1:8123/accounts/login/" in first
    admin = User.objects.get(email="demo@example.com")
    assert admin.is_superuser
    assert admin.is_staff
    password = first.split("password:")[1].split()[0]
    assert admin.check_password(password)
    # Its made-up address counts as confirmed: the site's log-in page lets it in (not only the admin's).
    assert EmailAddress.objects.filter(user=admin, email="demo@example.com", verified=True, primary=True).exists()
    response = Client().post("/accounts/login/", {"login": "demo@example.com", "password": password})
    assert response.status_code == 302
    assert response.url == "/"
    second = run("create_demo_admin", "--email", "demo@example.com")
    assert "already exists" in second
    assert password not in second
    assert User.objects.count() == 1
