import django_filters

from accounts.models import User
from accounts.roles import Role


class UserFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(choices=Role.choices, field_name="groups__name")
    email = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = User
        fields = ["role", "email", "is_active", "is_staff"]
