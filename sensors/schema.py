"""OpenAPI (drf-spectacular) descriptions of our own authentication classes; loaded by SensorsConfig.ready()."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class DeviceKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "sensors.authentication.DeviceKeyAuthentication"
    name = "deviceKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "A device key: `Device <key>`. It may only write readings of its own platform or sensor.",
        }
