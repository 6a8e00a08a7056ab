"""OpenAPI (drf-spectacular) descriptions of the project's own authentication classes."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class DeviceKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.DeviceKeyAuthentication"
    name = "deviceKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Device <key>`: writes readings of the key's platform or sensor, nothing else.",
        }
