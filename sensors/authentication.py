"""DRF authentication for devices: `Authorization: Device <key>`."""

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions


class DeviceKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates a device key. `request.user` stays anonymous and `request.auth` is the `DeviceKey`, so the
    key passes only the permission that looks for it (writing readings) and nothing else."""

    keyword = "Device"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid device key header: expected 'Device <key>'.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid device key.") from None
        # Imported here: DRF loads this class while `rest_framework.views` is still importing, and the services
        # import DRF themselves (through common.exceptions).
        from sensors.services.device_keys import device_key_authenticate

        key = device_key_authenticate(raw=raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked device key.")
        return AnonymousUser(), key

    def authenticate_header(self, request) -> str:
        return self.keyword
