import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from accounts.models import User
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_email_is_stored_lower_case_and_trimmed():
    user = UserFactory(email="  Ada.Lovelace@Example.COM ")
    assert user.email == "ada.lovelace@example.com"


def test_email_is_unique_without_regard_to_case_in_the_database():
    UserFactory(email="ada@example.com")
    with pytest.raises(IntegrityError):
        # Bypasses the service on purpose: the database constraint is the last line of defence.
        User.objects.bulk_create([User(email="ADA@example.com")])


def test_natural_key_lookup_ignores_case():
    user = UserFactory(email="grace@example.com")
    assert User.objects.get_by_natural_key("Grace@Example.com") == user


def test_password_is_stored_hashed():
    user = UserFactory(password="a-secret-passphrase")
    assert "a-secret-passphrase" not in user.password
    assert user.check_password("a-secret-passphrase")


def test_names_are_optional():
    user = UserFactory(first_name="", last_name="")
    assert user.get_full_name() == user.email
    assert str(user) == user.email


def test_an_unknown_default_role_is_a_system_check_error(settings):
    from accounts.checks import default_role_check

    settings.ACCOUNTS_DEFAULT_ROLE = "owner"
    assert [error.id for error in default_role_check(None)] == ["accounts.E001"]
    settings.ACCOUNTS_DEFAULT_ROLE = ""
    assert default_role_check(None) == []


def test_the_manager_creates_users_by_the_same_rule():
    user = User.objects.create_user("  Mary@Example.COM ", "a-secret-passphrase")
    assert user.email == "mary@example.com"
    assert user.check_password("a-secret-passphrase")
    assert not User.objects.create_user("nopass@example.com").has_usable_password()
    admin = User.objects.create_superuser("root@example.com", "a-secret-passphrase")
    assert admin.is_staff
    assert admin.is_superuser


def test_the_manager_refuses_a_missing_email_and_weak_passwords_by_field():
    with pytest.raises(ValidationError) as excinfo:
        User.objects.create_user("  ", "a-secret-passphrase")
    assert "email" in excinfo.value.message_dict
    with pytest.raises(ValidationError) as excinfo:
        User.objects.create_user("weak@example.com", "password", validate=True)
    assert excinfo.value.message_dict["password"]
    assert not User.objects.exists()
