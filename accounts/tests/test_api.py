from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from accounts.roles import user_role
from accounts.services import api_token_create
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

ME = reverse("accounts-api:user-me")
USERS = reverse("accounts-api:user-list")
TOKEN = reverse("accounts-api:token-obtain")
REVOKE = reverse("accounts-api:token-revoke")


def token_client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    return client


def assert_error(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "detail", "fields"}
    assert body["error"] == error
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


# --- /users/me/ -------------------------------------------------------------------------------------------------


def test_me_requires_authentication(api_client):
    assert_error(api_client.get(ME), 401, "not_authenticated")


@pytest.mark.parametrize("role", [None, "viewer", "operator"])
def test_me_answers_any_authenticated_user_with_their_role(client_as, role):
    user = UserFactory(role=role)
    response = client_as(user).get(ME)
    assert response.status_code == 200
    body = response.json()
    assert body["email"] == user.email
    assert body["role"] == role
    assert "password" not in body


def test_me_with_an_api_token():
    user = UserFactory(viewer=True)
    _, raw = api_token_create(user=user)
    response = token_client(raw).get(ME)
    assert response.status_code == 200
    assert response.json()["email"] == user.email


def test_expired_token_is_refused():
    token, raw = api_token_create(user=UserFactory(viewer=True))
    AuthToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(minutes=1))
    assert_error(token_client(raw).get(ME), 401, "authentication_failed")


def test_revoked_token_is_refused():
    user = UserFactory(viewer=True)
    _, raw = api_token_create(user=user)
    client = token_client(raw)
    assert client.post(REVOKE).status_code == 204
    assert_error(client.get(ME), 401, "authentication_failed")
    assert not AuthToken.objects.filter(user=user).exists()


def test_token_of_a_deactivated_user_is_refused():
    user = UserFactory(viewer=True)
    _, raw = api_token_create(user=user)
    user.is_active = False
    user.save()
    assert_error(token_client(raw).get(ME), 401, "authentication_failed")


def test_malformed_token_is_refused():
    assert_error(token_client("not-a-token").get(ME), 401, "authentication_failed")


# --- token log-in -------------------------------------------------------------------------------------------------


def test_token_obtain_returns_a_working_token(api_client):
    user = UserFactory(email="bot@example.com", viewer=True)
    response = api_client.post(TOKEN, {"email": "Bot@Example.com", "password": DEFAULT_PASSWORD})
    assert response.status_code == 201
    body = response.json()
    assert body["user"]["email"] == user.email
    assert body["expiry"]
    assert token_client(body["token"]).get(ME).status_code == 200


def test_token_obtain_with_bad_credentials(api_client):
    UserFactory(email="bot@example.com")
    response = api_client.post(TOKEN, {"email": "bot@example.com", "password": "wrong"})
    assert_error(response, 401, "invalid_credentials")


def test_token_obtain_field_errors(api_client):
    body = assert_error(api_client.post(TOKEN, {"email": "not-an-email"}), 400, "validation_error")
    assert set(body["fields"]) == {"email", "password"}


def test_token_obtain_is_throttled(api_client):
    UserFactory(email="bot@example.com")
    codes = [api_client.post(TOKEN, {"email": "bot@example.com", "password": "guess"}).status_code for _ in range(5)]
    assert codes == [401] * 5
    response = api_client.post(TOKEN, {"email": "bot@example.com", "password": DEFAULT_PASSWORD})
    body = assert_error(response, 429, "throttled")
    assert "Retry-After" in response.headers
    assert body["detail"]


def test_anonymous_calls_are_throttled(api_client, monkeypatch):
    rates = {"anon": "3/minute", "user": "1000/minute", "device": "1000/minute"}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    url = reverse("api-schema")
    assert [api_client.get(url).status_code for _ in range(3)] == [200] * 3
    response = api_client.get(url, HTTP_ACCEPT="application/json")
    assert_error(response, 429, "throttled")


# --- staff: users and roles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_user_list_is_staff_only(client_as, role):
    assert_error(client_as(UserFactory(role=role)).get(USERS), 403, "permission_denied")


def test_user_list_for_staff_without_n_plus_one(client_as, staff_user, django_assert_num_queries):
    UserFactory.create_batch(3, viewer=True)
    UserFactory.create_batch(2, operator=True)
    client = client_as(staff_user)
    # session, user, count, page, one prefetch of every listed user's groups: fixed, however many users
    with django_assert_num_queries(5):
        response = client.get(USERS)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 6
    roles = sorted(str(item["role"]) for item in body["results"])
    assert roles == ["None", "operator", "operator", "viewer", "viewer", "viewer"]


def test_user_list_filters_by_role_and_searches(client_as, staff_user):
    UserFactory(email="alpha@example.com", operator=True)
    UserFactory(email="beta@example.com", viewer=True)
    client = client_as(staff_user)
    assert [u["email"] for u in client.get(USERS, {"role": "operator"}).json()["results"]] == ["alpha@example.com"]
    assert [u["email"] for u in client.get(USERS, {"search": "beta"}).json()["results"]] == ["beta@example.com"]


def test_user_detail_and_unknown_user(client_as, staff_user):
    target = UserFactory(viewer=True)
    client = client_as(staff_user)
    assert client.get(reverse("accounts-api:user-detail", args=[target.pk])).json()["email"] == target.email
    assert_error(client.get(reverse("accounts-api:user-detail", args=[999999])), 404, "not_found")


def test_staff_changes_a_role(client_as, staff_user):
    target = UserFactory(viewer=True)
    url = reverse("accounts-api:user-role", args=[target.pk])
    response = client_as(staff_user).post(url, {"role": "operator"})
    assert response.status_code == 200
    assert response.json()["role"] == "operator"
    assert user_role(target) == "operator"


def test_role_change_rejects_unknown_roles_with_field_errors(client_as, staff_user):
    target = UserFactory(viewer=True)
    url = reverse("accounts-api:user-role", args=[target.pk])
    body = assert_error(client_as(staff_user).post(url, {"role": "king"}), 400, "validation_error")
    assert list(body["fields"]) == ["role"]
    assert user_role(target) == "viewer"


def test_operators_cannot_change_roles(client_as):
    operator = UserFactory(operator=True)
    url = reverse("accounts-api:user-role", args=[operator.pk])
    assert_error(client_as(operator).post(url, {"role": "none"}), 403, "permission_denied")
    assert user_role(operator) == "operator"


def test_role_change_is_not_possible_with_get(client_as, staff_user):
    target = UserFactory(viewer=True)
    url = reverse("accounts-api:user-role", args=[target.pk])
    assert_error(client_as(staff_user).get(url, {"role": "operator"}), 405, "method_not_allowed")
    assert user_role(target) == "viewer"


def test_api_docs_and_schema_are_served(api_client):
    assert api_client.get(reverse("api-schema")).status_code == 200
    docs = api_client.get(reverse("api-docs"))
    assert docs.status_code == 200
    # Swagger UI comes from the installed sidecar package, not a CDN.
    assert b"cdn.jsdelivr" not in docs.content
    assert b"drf_spectacular_sidecar" in docs.content
