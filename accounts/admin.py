from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import PermissionDenied
from knox.models import AuthToken

from accounts.forms import AdminLoginForm
from accounts.models import ApiToken, User
from accounts.roles import Role, user_role
from accounts.selectors import user_list
from accounts.services import (
    api_token_create,
    api_token_revoke,
    user_approve,
    user_rights_recheck,
    user_set_role,
)

# The admin's log-in goes through the per-account lock like every other log-in (accounts/backends.py).
admin.site.login_form = AdminLoginForm


class UserCreationAdminForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserChangeAdminForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeAdminForm
    add_form = UserCreationAdminForm
    list_display = ("email", "first_name", "last_name", "role", "is_active", "is_staff", "date_joined")
    list_filter = ("is_active", "is_staff", "is_superuser", "groups")
    search_fields = ("email", "first_name", "last_name")
    ordering = ("email",)
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "usable_password", "password1", "password2")}),)
    actions = ("approve", "make_viewer", "make_operator", "remove_role")

    def get_queryset(self, request):
        return user_list()

    # Staff who are not superusers change what the API lets them (role, active); flags and permissions that would
    # raise anyone's rights, other staff accounts and passwords stay the superusers' (accounts.roles).
    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return super().get_readonly_fields(request, obj)
        return ("is_staff", "is_superuser", "groups", "user_permissions", "last_login", "date_joined")

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and not request.user.is_superuser and (obj.is_staff or obj.is_superuser):
            return False
        return super().has_change_permission(request, obj)

    def user_change_password(self, request, id, form_url=""):
        if not request.user.is_superuser:
            raise PermissionDenied
        return super().user_change_password(request, id, form_url)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if change:
            user_rights_recheck(user=form.instance)

    @admin.display(description="role")
    def role(self, user: User) -> str:
        return user_role(user) or "—"

    @admin.action(description="Approve selected accounts (let them log in)")
    def approve(self, request, queryset):
        for user in queryset:
            user_approve(user=user)
        self.message_user(request, f"{queryset.count()} account(s) approved.", messages.SUCCESS)

    def _set_role(self, request, queryset, role: str | None) -> None:
        for user in queryset:
            user_set_role(user=user, role=role)
        self.message_user(request, f"Role of {queryset.count()} user(s) set to {role or 'none'}.", messages.SUCCESS)

    @admin.action(description="Set role: viewer")
    def make_viewer(self, request, queryset):
        self._set_role(request, queryset, Role.VIEWER)

    @admin.action(description="Set role: operator")
    def make_operator(self, request, queryset):
        self._set_role(request, queryset, Role.OPERATOR)

    @admin.action(description="Remove role")
    def remove_role(self, request, queryset):
        self._set_role(request, queryset, None)


class ApiTokenCreateForm(forms.ModelForm):
    ttl_days = forms.IntegerField(
        label="Valid for (days)", min_value=1, required=False, help_text="Empty: the token never expires."
    )

    class Meta:
        model = ApiToken
        fields = ("user",)

    def clean_user(self):
        user = self.cleaned_data["user"]
        if not user.is_active:
            raise forms.ValidationError("Inactive users cannot have API tokens.")
        return user


# knox registers its model as "Auth tokens" in a section of its own; staff see them as "API tokens" in Accounts.
admin.site.unregister(AuthToken)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are stored as digests: the raw token is shown once, right after it is made."""

    list_display = ("token_key", "user", "created", "expiry")
    list_select_related = ("user",)
    search_fields = ("token_key", "user__email")
    raw_id_fields = ("user",)
    # Shown read-only on a token's page (no change permission); the digest is never shown.
    detail_fields = ("token_key", "user", "created", "expiry")
    actions = ("revoke",)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenCreateForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ("user", "ttl_days") if obj is None else self.detail_fields

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        # The form refused inactive users already; the service enforces it again.
        ttl_days = form.cleaned_data.get("ttl_days")
        token, raw = api_token_create(
            user=form.cleaned_data["user"], ttl=timedelta(days=ttl_days) if ttl_days else None
        )
        form.instance = token
        obj.pk = token.pk
        self.message_user(request, f"New API token (copy it now, it is not shown again): {raw}", messages.WARNING)

    def save_related(self, request, form, formsets, change):
        pass

    def delete_model(self, request, obj):
        api_token_revoke(token=obj)

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        tokens = list(queryset)
        for token in tokens:
            api_token_revoke(token=token)
        self.message_user(request, f"{len(tokens)} token(s) revoked.", messages.SUCCESS)
