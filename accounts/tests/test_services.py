from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from knox.models import AuthToken

from accounts.models import User
from accounts.roles import can_operate, can_read, user_role
from accounts.services import (
    api_token_create,
    api_token_obtain,
    api_token_revoke,
    api_tokens_purge_expired,
    user_approve,
    user_create,
    user_delete,
    user_register,
    user_set_role,
)
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from common.exceptions import ApplicationError

pytestmark = pytest.mark.django_db


def test_user_create_refuses_a_duplicate_email_in_any_case():
    user_create(email="ops@example.com", password="x" * 12)
    with pytest.raises(ApplicationError) as excinfo:
        user_create(email="OPS@example.com", password="x" * 12)
    assert excinfo.value.code == "duplicate"
    assert "email" in excinfo.value.fields
    assert User.objects.count() == 1


def test_user_create_validates_weak_passwords_when_asked():
    with pytest.raises(ApplicationError) as excinfo:
        user_create(email="weak@example.com", password="password", validate=True)
    assert excinfo.value.fields["password"]
    assert not User.objects.exists()


def test_user_create_requires_an_email():
    with pytest.raises(ApplicationError) as excinfo:
        user_create(email=" ", password="x" * 12)
    assert excinfo.value.detail == "An email address is required."
    assert excinfo.value.fields == {"email": ["This field is required."]}


def test_user_create_without_password_gives_an_unusable_one():
    user = user_create(email="nopass@example.com")
    assert not user.has_usable_password()


@pytest.mark.parametrize(
    ("role", "reads", "operates"), [(None, False, False), ("viewer", True, False), ("operator", True, True)]
)
def test_roles_grant_their_permissions(role, reads, operates):
    user = UserFactory(role=role)
    user = User.objects.get(pk=user.pk)  # fresh instance: no permission cache
    assert user_role(user) == role
    assert can_read(user) is reads
    assert can_operate(user) is operates


def test_staff_can_do_what_any_role_can():
    staff = UserFactory(staff=True)
    assert can_read(staff)
    assert can_operate(staff)


def test_inactive_users_can_do_nothing():
    user = UserFactory(operator=True, is_active=False)
    assert not can_read(user)
    assert not can_operate(user)


def test_set_role_replaces_the_previous_role_and_takes_effect_at_once():
    user = UserFactory(viewer=True)
    assert not can_operate(user)
    user_set_role(user=user, role="operator")
    assert can_operate(user)
    assert list(user.groups.values_list("name", flat=True)) == ["operator"]
    user_set_role(user=user, role="none")
    assert not can_read(user)
    assert not user.groups.exists()


def test_set_role_refuses_unknown_roles():
    user = UserFactory(viewer=True)
    with pytest.raises(ApplicationError) as excinfo:
        user_set_role(user=user, role="admin")
    assert "role" in excinfo.value.fields
    assert user_role(user) == "viewer"


def test_register_gives_the_default_role_and_never_staff():
    user = User(email="New@Example.com", is_staff=True, is_superuser=True)
    user.set_password(DEFAULT_PASSWORD)
    user = user_register(user=user)
    assert user.email == "new@example.com"
    assert user.is_active
    assert not user.is_staff
    assert not user.is_superuser
    assert user_role(user) == "viewer"


@override_settings(ACCOUNTS_REQUIRE_APPROVAL=True)
def test_register_with_approval_required_leaves_the_account_inactive_until_approved():
    user = User(email="pending@example.com")
    user.set_password(DEFAULT_PASSWORD)
    user = user_register(user=user)
    assert not user.is_active
    user_approve(user=user)
    user.refresh_from_db()
    assert user.is_active


def test_user_delete_removes_the_user_and_their_tokens():
    user = UserFactory()
    api_token_create(user=user)
    user_delete(user=user)
    assert not User.objects.filter(pk=user.pk).exists()
    assert not AuthToken.objects.exists()


def test_api_token_is_stored_hashed_and_expires():
    user = UserFactory()
    token, raw = api_token_create(user=user, ttl=timedelta(days=7))
    stored = AuthToken.objects.get(pk=token.pk)
    assert raw not in (stored.digest, stored.token_key)
    assert stored.token_key == raw[: len(stored.token_key)]
    assert timedelta(days=6, hours=23) < stored.expiry - timezone.now() <= timedelta(days=7)


def test_api_token_default_lifetime_comes_from_settings():
    token, _ = api_token_create(user=UserFactory())
    assert timedelta(days=89) < token.expiry - timezone.now() <= timedelta(days=90)


def test_api_token_without_expiry():
    token, _ = api_token_create(user=UserFactory(), ttl=None)
    assert token.expiry is None


def test_api_token_refused_for_inactive_users():
    with pytest.raises(ApplicationError):
        api_token_create(user=UserFactory(is_active=False))


def test_api_token_refused_for_unconfirmed_addresses():
    """The rule of who may authenticate (accounts.selectors.user_can_authenticate), e.g. for tokens made in the
    admin or by the command."""
    from allauth.account.models import EmailAddress

    user = UserFactory()
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=False)
    with pytest.raises(ApplicationError) as raised:
        api_token_create(user=user)
    assert raised.value.code == "inactive_user"


def test_api_token_revoke_and_purge():
    user = UserFactory()
    live, _ = api_token_create(user=user)
    expired, _ = api_token_create(user=user)
    AuthToken.objects.filter(pk=expired.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert api_tokens_purge_expired() == 1
    assert list(AuthToken.objects.values_list("pk", flat=True)) == [live.pk]
    api_token_revoke(token=live)
    assert not AuthToken.objects.exists()


def test_api_token_obtain_checks_credentials_without_revealing_which_part_is_wrong():
    user = UserFactory(email="script@example.com")
    token, raw = api_token_obtain(email="SCRIPT@example.com", password=DEFAULT_PASSWORD)
    assert token.user == user
    for email, password in [("script@example.com", "wrong"), ("nobody@example.com", DEFAULT_PASSWORD)]:
        with pytest.raises(ApplicationError) as excinfo:
            api_token_obtain(email=email, password=password)
        assert excinfo.value.status_code == 401
        assert excinfo.value.detail == "Unable to log in with these credentials."


def test_set_role_names_a_missing_role_group_clearly():
    from django.contrib.auth.models import Group

    user = UserFactory()
    Group.objects.filter(name="operator").delete()
    with pytest.raises(ApplicationError, match="run `manage.py migrate`"):
        user_set_role(user=user, role="operator")
