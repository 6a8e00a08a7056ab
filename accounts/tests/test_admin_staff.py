"""The admin follows the API's rule (accounts.roles): staff may do there what the API lets staff do, without being
superusers; an account without `is_staff` cannot log in, whatever its role."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.roles import user_role
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from sensors.models import Platform

pytestmark = pytest.mark.django_db

APP_PAGES = [
    "admin:sensors_platform_changelist",
    "admin:sensors_platform_add",
    "admin:sensors_sensor_changelist",
    "admin:sensors_devicekey_changelist",
    "admin:sensors_rejectedmessage_changelist",
    "admin:detection_anomaly_changelist",
    "admin:detection_detectorsettings_changelist",
    "admin:rates_exchangerate_changelist",
    "admin:django_celery_beat_periodictask_changelist",
    "admin:accounts_user_changelist",
]
SUPERUSER_PAGES = ["admin:auth_group_changelist", "admin:accounts_apitoken_changelist", "admin:accounts_user_add"]


@pytest.fixture
def staff_client(staff_user) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


def test_staff_see_the_app_models(staff_client):
    index = staff_client.get(reverse("admin:index"))
    assert index.status_code == 200
    page = index.content.decode()
    for name in ("Platforms", "Sensors", "Anomalies", "Exchange rates", "Users", "Periodic tasks"):
        assert name in page, name
    assert "You don’t have permission to view or edit anything" not in page
    for name in APP_PAGES:
        assert staff_client.get(reverse(name)).status_code == 200, name


def test_staff_change_the_catalogue_in_the_admin(staff_client):
    response = staff_client.post(
        reverse("admin:sensors_platform_add"),
        {
            "name": "Rig 9",
            "slug": "rig-9",
            "description": "",
            "latitude": "",
            "longitude": "",
            "installations-TOTAL_FORMS": "0",
            "installations-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Platform.objects.filter(slug="rig-9").exists()


def test_staff_set_roles_in_the_admin_as_in_the_api(staff_client):
    member = UserFactory()
    staff_client.post(
        reverse("admin:accounts_user_changelist"), {"action": "make_operator", "_selected_action": [member.pk]}
    )
    assert user_role(member) == "operator"


def test_staff_cannot_make_superusers_or_take_over_staff_accounts(staff_client, staff_user):
    member = UserFactory()
    page = staff_client.get(reverse("admin:accounts_user_change", args=[member.pk])).content.decode()
    assert 'name="is_superuser"' not in page
    assert 'name="is_staff"' not in page
    assert staff_client.get(reverse("admin:auth_user_password_change", args=[member.pk])).status_code == 403
    other_staff = UserFactory(staff=True)
    page = staff_client.get(reverse("admin:accounts_user_change", args=[other_staff.pk])).content.decode()
    assert 'name="is_active"' not in page  # view only


def test_staff_do_not_get_what_the_api_does_not_give_them(staff_client):
    for name in SUPERUSER_PAGES:
        assert staff_client.get(reverse(name)).status_code == 403, name


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_roles_without_is_staff_cannot_log_into_the_admin(role):
    UserFactory(email=f"{role}@example.com", role=role)
    client = Client()
    response = client.post(
        reverse("admin:login"), {"username": f"{role}@example.com", "password": DEFAULT_PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("admin:sensors_platform_changelist")).status_code == 302  # to the log-in page
