from rest_framework import serializers

from accounts.models import User
from accounts.roles import Role, user_role


class UserSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "email", "first_name", "last_name", "role", "is_active", "is_staff", "date_joined"]
        read_only_fields = fields

    def get_role(self, user: User) -> str | None:
        return user_role(user)


class UserRoleInputSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=[*Role.values, "none"])


class TokenObtainInputSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})


class TokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`. Shown only once.")
    expiry = serializers.DateTimeField(allow_null=True)
    user = UserSerializer()
