from django.urls import path
from rest_framework.routers import SimpleRouter

from accounts.api import views

app_name = "accounts-api"

router = SimpleRouter()
router.register("users", views.UserViewSet, basename="user")

urlpatterns = [
    path("users/me/", views.UserMeApi.as_view(), name="user-me"),
    path("users/<int:pk>/role/", views.UserRoleApi.as_view(), name="user-role"),
    path("auth/token/", views.TokenObtainApi.as_view(), name="token-obtain"),
    path("auth/token/revoke/", views.TokenRevokeApi.as_view(), name="token-revoke"),
    *router.urls,
]
