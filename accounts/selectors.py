from django.contrib.auth.models import Group
from django.db.models import Prefetch, QuerySet

from accounts.models import User


def user_list() -> QuerySet[User]:
    """Users with their groups prefetched (role shown without a query per user)."""
    return User.objects.prefetch_related(Prefetch("groups", queryset=Group.objects.only("id", "name"))).order_by(
        "email"
    )
