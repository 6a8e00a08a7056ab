from django.urls import path

from dashboard.views.data import data_download, data_page

app_name = "dashboard"

urlpatterns: list = [
    path("data/", data_page, name="data"),
    path("data/download/<str:job_id>/", data_download, name="data-download"),
]
