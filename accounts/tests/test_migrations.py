import pytest
from django.contrib.auth.models import Group

pytestmark = pytest.mark.django_db


def test_role_groups_come_from_the_data_migration_with_their_permissions():
    perms = {
        group.name: sorted(group.permissions.values_list("codename", flat=True))
        for group in Group.objects.filter(name__in=["viewer", "operator"])
    }
    assert perms == {"viewer": ["access_data"], "operator": ["access_data", "operate"]}
