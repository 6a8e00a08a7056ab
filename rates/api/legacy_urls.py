"""The old currency service's paths, kept for its clients: `GET /v1/rates` and `POST /v1/rates/update`."""

from django.urls import path

from rates.api import views

app_name = "rates-legacy"

urlpatterns = [
    path("rates", views.LegacyRateListApi.as_view(), name="rate-list"),
    path("rates/update", views.LegacyRatesUpdateApi.as_view(), name="rates-update"),
]
