import django_filters

from accounts.models import User
from accounts.roles import Role
from common.inputs import BooleanFilter


class UserFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=Role.choices, field_name="groups__name")
    email = django_filters.CharFilter(lookup_expr="icontains")
    is_active = BooleanFilter()
    is_staff = BooleanFilter()

    class Meta:
        model = User
        fields = ["role", "email", "is_active", "is_staff"]
