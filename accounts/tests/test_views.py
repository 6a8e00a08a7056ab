"""The account pages (django-allauth plus our own), driven through Django's test client."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import override_settings
from django.urls import reverse

from accounts.models import User
from accounts.roles import user_role
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

STRONG = "quiet-harbour-lantern-42"


def signup(client, email: str, password: str = STRONG, password2: str | None = None):
    return client.post(
        reverse("account_signup"), {"email": email, "password1": password, "password2": password2 or password}
    )


def confirm_from_outbox(client) -> None:
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body).group(0)
    assert client.get(link).status_code == 200  # GET only shows the confirmation form
    response = client.post(link)
    assert response.status_code == 302


def verified_user(email: str = "member@example.com", **kwargs) -> User:
    user = UserFactory(email=email, **kwargs)
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    return user


def test_signup_sends_a_confirmation_and_confirming_verifies_the_address(client):
    response = signup(client, "New.Member@Example.com")
    assert response.status_code == 302
    user = User.objects.get()
    assert user.email == "new.member@example.com"
    assert user_role(user) == "viewer"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new.member@example.com"]
    assert not EmailAddress.objects.get(user=user).verified

    confirm_from_outbox(client)
    assert EmailAddress.objects.get(user=user).verified


def test_confirmation_link_does_not_confirm_on_get(client):
    signup(client, "get@example.com")
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body).group(0)
    client.get(link)
    assert not EmailAddress.objects.get(email="get@example.com").verified


def test_unconfirmed_account_cannot_log_in(client):
    signup(client, "later@example.com")
    client.logout()
    response = client.post(reverse("account_login"), {"login": "later@example.com", "password": STRONG})
    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")
    assert "_auth_user_id" not in client.session


def test_signup_with_a_taken_email_in_another_case_creates_nothing_and_tells_the_owner(client):
    owner = verified_user("taken@example.com")
    response = signup(client, "TAKEN@example.com")
    # The page does not reveal that the address is taken (no account enumeration) ...
    assert response.status_code == 302
    assert list(User.objects.all()) == [owner]
    # ... the owner of the address is told by email instead.
    assert mail.outbox[-1].to == ["taken@example.com"]
    assert "already" in mail.outbox[-1].body.lower()


@pytest.mark.parametrize(
    ("password", "password2"),
    [("password", None), ("12345678901", None), ("short", None), (STRONG, STRONG + "x")],
)
def test_signup_refuses_weak_or_mismatched_passwords(client, password, password2):
    response = signup(client, "weak@example.com", password, password2)
    assert response.status_code == 200
    assert response.context["form"].errors
    assert not User.objects.exists()


def test_login_and_logout(client):
    user = verified_user()
    response = client.post(reverse("account_login"), {"login": "MEMBER@example.com", "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == user.pk
    page = client.get(reverse("landing"))
    assert user.email in page.content.decode()

    # GET only asks; the logout itself is a POST.
    client.get(reverse("account_logout"))
    assert "_auth_user_id" in client.session
    client.post(reverse("account_logout"))
    assert "_auth_user_id" not in client.session


def test_failed_logins_are_rate_limited(client):
    verified_user()
    url = reverse("account_login")
    for _ in range(5):
        assert client.post(url, {"login": "member@example.com", "password": "nope"}).status_code == 200
    # The sixth attempt on the same account within 5 minutes is refused, even with the right password.
    response = client.post(url, {"login": "member@example.com", "password": DEFAULT_PASSWORD})
    assert "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def change_password(client, user: User, old: str):
    client.force_login(user)
    return client.post(
        reverse("account_change_password"), {"oldpassword": old, "password1": STRONG, "password2": STRONG}
    )


def test_password_change(client):
    user = verified_user()
    response = change_password(client, user, DEFAULT_PASSWORD)
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(STRONG)


def test_password_change_needs_the_old_password(client):
    user = verified_user()
    response = change_password(client, user, "wrong")
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)


def test_password_reset_by_email(client):
    user = verified_user()
    response = client.post(reverse("account_reset_password"), {"email": "member@example.com"})
    assert response.status_code == 302
    link = re.search(r"https?://\S+/accounts/password/reset/key/\S+/", mail.outbox[-1].body).group(0)
    response = client.get(link, follow=True)
    form_url = response.redirect_chain[-1][0] if response.redirect_chain else link
    response = client.post(form_url, {"password1": STRONG, "password2": STRONG})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(STRONG)


def test_account_deletion_needs_the_password_and_a_confirmation(client):
    user = verified_user()
    client.force_login(user)
    url = reverse("accounts:delete")
    assert client.get(url).status_code == 200
    response = client.post(url, {"password": "wrong", "confirm": "on"})
    assert response.status_code == 200
    assert response.context["form"].errors["password"]
    response = client.post(url, {"password": DEFAULT_PASSWORD})
    assert response.context["form"].errors["confirm"]
    assert User.objects.filter(pk=user.pk).exists()

    response = client.post(url, {"password": DEFAULT_PASSWORD, "confirm": "on"})
    assert response.status_code == 302
    assert not User.objects.filter(pk=user.pk).exists()
    assert "_auth_user_id" not in client.session


def test_account_deletion_requires_login(client):
    response = client.get(reverse("accounts:delete"))
    assert response.status_code == 302
    assert reverse("account_login") in response.url


@override_settings(ACCOUNTS_REQUIRE_APPROVAL=True)
def test_with_approval_required_a_new_account_waits_for_staff(client, admin_client):
    response = signup(client, "pending@example.com")
    assert response.status_code == 302
    assert response.url == reverse("accounts:awaiting-approval")
    user = User.objects.get(email="pending@example.com")
    assert not user.is_active
    assert "_auth_user_id" not in client.session
    confirm_from_outbox(client)  # the address can be confirmed meanwhile

    response = client.post(reverse("account_login"), {"login": "pending@example.com", "password": STRONG})
    assert "_auth_user_id" not in client.session

    # Staff approve it with the admin action.
    admin_client.post(reverse("admin:accounts_user_changelist"), {"action": "approve", "_selected_action": [user.pk]})
    user.refresh_from_db()
    assert user.is_active
    client.post(reverse("account_login"), {"login": "pending@example.com", "password": STRONG})
    assert int(client.session["_auth_user_id"]) == user.pk


def test_landing_page_for_visitors_and_members(client):
    page = client.get(reverse("landing")).content.decode()
    assert "Sensorhub" in page
    for name in ("account_signup", "account_login", "api-docs"):
        assert reverse(name) in page
    user = verified_user()
    client.force_login(user)
    page = client.get(reverse("landing")).content.decode()
    assert user.email in page
    assert reverse("accounts:delete") in page
