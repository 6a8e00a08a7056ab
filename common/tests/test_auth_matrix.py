"""Every API endpoint × every kind of caller → the expected answer (SPEC §9). Later endpoints join the table."""

import pytest
from django.urls import reverse

from accounts.services import api_token_create
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CALLERS = ["anonymous", "no_role", "viewer", "operator", "staff", "viewer_token"]


def _target_id() -> int:
    return UserFactory(email="target@example.com", viewer=True).pk


READERS = {"anonymous": 401, "no_role": 403, "viewer": 200, "operator": 200, "staff": 200, "viewer_token": 200}
OPERATORS_202 = {"anonymous": 401, "no_role": 403, "viewer": 403, "operator": 202, "staff": 202, "viewer_token": 403}
STAFF_ONLY = {"anonymous": 401, "no_role": 403, "viewer": 403, "operator": 403, "staff": 200, "viewer_token": 403}

# (method, url name, url args, body, {caller: expected status})
ENDPOINTS = [
    (
        "get",
        "accounts-api:user-me",
        False,
        None,
        {"anonymous": 401, "no_role": 200, "viewer": 200, "operator": 200, "staff": 200, "viewer_token": 200},
    ),
    (
        "get",
        "accounts-api:user-list",
        False,
        None,
        STAFF_ONLY,
    ),
    (
        "get",
        "accounts-api:user-detail",
        True,
        None,
        STAFF_ONLY,
    ),
    (
        "post",
        "accounts-api:user-role",
        True,
        {"role": "operator"},
        STAFF_ONLY,
    ),
    (
        "post",
        "accounts-api:token-revoke",
        False,
        None,
        {"anonymous": 401, "no_role": 401, "viewer": 401, "operator": 401, "staff": 401, "viewer_token": 204},
    ),
    ("get", "rates-api:rate-list", False, None, READERS),
    ("get", "rates-api:rate-convert", False, {"from": "EUR", "to": "EUR", "amount": "5"}, READERS),
    ("post", "rates-api:rates-update", False, {}, OPERATORS_202),
    ("get", "rates-api:job-progress", True, None, READERS),
    ("get", "rates-legacy:rate-list", False, None, READERS),
    ("post", "rates-legacy:rates-update", False, {}, OPERATORS_202),
]


def client_for(caller: str, api_client):
    if caller == "anonymous":
        return api_client
    if caller == "viewer_token":
        _, raw = api_token_create(user=UserFactory(viewer=True))
        api_client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
        return api_client
    user = {
        "no_role": lambda: UserFactory(),
        "viewer": lambda: UserFactory(viewer=True),
        "operator": lambda: UserFactory(operator=True),
        "staff": lambda: UserFactory(staff=True),
    }[caller]()
    api_client.force_login(user)
    return api_client


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("method", "name", "with_id", "body", "expected"), ENDPOINTS, ids=[e[1] for e in ENDPOINTS])
def test_auth_matrix(api_client, caller, method, name, with_id, body, expected):
    url = reverse(name, args=[_target_id()] if with_id else [])
    client = client_for(caller, api_client)
    response = getattr(client, method)(url, body)
    assert response.status_code == expected[caller], (caller, name, response.content)
