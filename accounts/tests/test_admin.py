import re

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.roles import user_role
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_user_admin_pages_load(admin_client):
    user = UserFactory(viewer=True)
    assert admin_client.get(reverse("admin:accounts_user_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:accounts_user_change", args=[user.pk])).status_code == 200
    assert admin_client.get(reverse("admin:accounts_user_add")).status_code == 200


def test_admin_adds_a_user_by_email(admin_client):
    response = admin_client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "Added@Example.com",
            "usable_password": "true",
            "password1": "quiet-harbour-lantern-42",
            "password2": "quiet-harbour-lantern-42",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    from accounts.models import User

    assert User.objects.filter(email="added@example.com").exists()


def test_admin_role_actions(admin_client):
    user = UserFactory(viewer=True)
    admin_client.post(
        reverse("admin:accounts_user_changelist"), {"action": "make_operator", "_selected_action": [user.pk]}
    )
    assert user_role(user) == "operator"
    admin_client.post(
        reverse("admin:accounts_user_changelist"), {"action": "remove_role", "_selected_action": [user.pk]}
    )
    assert user_role(user) is None


def test_admin_creates_a_token_and_shows_it_once(admin_client):
    owner = UserFactory(viewer=True)
    response = admin_client.post(
        reverse("admin:accounts_apitoken_add"), {"user": owner.pk, "ttl_days": 30}, follow=True
    )
    assert response.status_code == 200
    shown = " ".join(str(m) for m in get_messages(response.wsgi_request)) + response.content.decode()
    raw = re.search(r"copy it now, it is not shown again\): (\S+)", shown).group(1)
    token = AuthToken.objects.get(user=owner)
    assert raw != token.digest
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    assert client.get("/api/v1/users/me/").status_code == 200
    # The list and detail pages never show the raw token again.
    assert raw not in admin_client.get(reverse("admin:accounts_apitoken_changelist")).content.decode()
    detail = admin_client.get(reverse("admin:accounts_apitoken_change", args=[token.pk])).content.decode()
    assert raw not in detail


def test_admin_refuses_tokens_for_inactive_users(admin_client):
    owner = UserFactory(is_active=False)
    response = admin_client.post(reverse("admin:accounts_apitoken_add"), {"user": owner.pk})
    assert response.status_code == 200
    assert "Inactive users cannot have API tokens" in response.content.decode()
    assert not AuthToken.objects.exists()


def test_admin_revokes_tokens(admin_client):
    from accounts.services import api_token_create

    token, raw = api_token_create(user=UserFactory(viewer=True))
    admin_client.post(
        reverse("admin:accounts_apitoken_changelist"), {"action": "revoke", "_selected_action": [token.pk]}
    )
    assert not AuthToken.objects.exists()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    assert client.get("/api/v1/users/me/").status_code == 401
