from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from common.views import healthcheck, liveness

api_v1 = [
    path("", include("accounts.api.urls")),
    path("", include("sensors.api.urls")),
    path("", include("detection.api.urls")),
    path("", include("rates.api.urls")),
]

urlpatterns = [
    path("", TemplateView.as_view(template_name="landing.html"), name="landing"),
    path("healthcheck", healthcheck, name="healthcheck"),
    path("healthcheck/live", liveness, name="liveness"),
    path(settings.ADMIN_URL, admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include(api_v1)),
    path("v1/", include("rates.api.legacy_urls")),
    path("rates/", include("rates.urls")),
    path("dashboard/", include("dashboard.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]

# Django's error answers: the one API error shape on API paths, Django's pages elsewhere (common/exceptions.py).
handler400 = "common.exceptions.handler400"
handler403 = "common.exceptions.handler403"
handler404 = "common.exceptions.handler404"
handler500 = "common.exceptions.handler500"

admin.site.site_header = "Sensorhub administration"
admin.site.site_title = "Sensorhub admin"
