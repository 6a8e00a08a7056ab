import factory

from accounts.models import User
from accounts.services import user_create

DEFAULT_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = DEFAULT_PASSWORD
    role = None
    is_active = True
    is_staff = False
    is_superuser = False

    class Meta:
        model = User

    class Params:
        viewer = factory.Trait(role="viewer")
        operator = factory.Trait(role="operator")
        staff = factory.Trait(is_staff=True)

    @classmethod
    def _build(cls, model_class, *args, role=None, password=DEFAULT_PASSWORD, **kwargs):
        user = model_class(*args, **kwargs)
        user.set_password(password)
        return user

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return user_create(**kwargs)
