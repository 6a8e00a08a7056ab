from django.urls import path

from rates.api import views

app_name = "rates-api"

urlpatterns = [
    path("rates/", views.RateListApi.as_view(), name="rate-list"),
    path("rates/convert/", views.RateConvertApi.as_view(), name="rate-convert"),
    path("rates/update/", views.RatesUpdateApi.as_view(), name="rates-update"),
    path("rates/jobs/<str:job_id>/", views.RatesJobApi.as_view(), name="job-progress"),
]
