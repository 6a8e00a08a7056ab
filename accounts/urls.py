from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("delete/", views.account_delete, name="delete"),
    path("awaiting-approval/", views.awaiting_approval, name="awaiting-approval"),
]
