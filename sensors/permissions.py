"""DRF permission classes of the sensors API (the role permissions are in accounts.permissions)."""

from rest_framework.permissions import BasePermission

from accounts.roles import can_operate
from sensors.models import DeviceKey


class CanWriteReadings(BasePermission):
    """Operators write readings of any sensor; a device key only those of its own platform or sensor (the
    ingestion service checks which sensors)."""

    message = "Writing readings requires the operator role or a device key."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, DeviceKey) or can_operate(request.user)
