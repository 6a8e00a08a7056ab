"""The admin site: Django's, with one Accounts section.

Users (accounts), their roles (auth's groups), email addresses (allauth) and API tokens (knox's model, as the
`accounts.ApiToken` proxy) come from four apps, and the admin index used to show three or four sections for them.
Here the index shows the models of the apps in `SECTION_OF` inside the section of the app it names.
"""

from typing import Any

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest

# app label → the app whose section shows its models on the admin index.
SECTION_OF = {"auth": "accounts", "account": "accounts", "knox": "accounts"}


class SensorhubAdminSite(AdminSite):
    site_header = "Sensorhub administration"
    site_title = "Sensorhub admin"

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        apps = super().get_app_list(request, app_label)
        if app_label is not None:  # one app's own page keeps its models
            return apps
        by_label = {app["app_label"]: app for app in apps}
        merged: list[dict[str, Any]] = []
        for app in apps:
            target = SECTION_OF.get(app["app_label"])
            if target is None:
                merged.append(app)
                continue
            if target not in by_label:  # e.g. staff allowed only groups: the section appears under its own name
                by_label[target] = {**app, "app_label": target, "name": target.title(), "models": []}
                merged.append(by_label[target])
            by_label[target]["models"].extend(app["models"])
        for app in merged:
            app["models"].sort(key=lambda model: model["name"].lower())
        merged.sort(key=lambda app: app["name"].lower())
        return merged


class SensorhubAdminConfig(AdminConfig):
    """django.contrib.admin with `SensorhubAdminSite` as `admin.site` (listed in INSTALLED_APPS instead of it)."""

    default_site = "config.admin.SensorhubAdminSite"
