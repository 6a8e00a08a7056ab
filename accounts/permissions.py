"""DRF permission classes over accounts.roles."""

from rest_framework.permissions import BasePermission

from accounts.roles import can_operate, can_read


class CanRead(BasePermission):
    """Viewer role or more. The default for every API view."""

    message = "Reading requires the viewer role."

    def has_permission(self, request, view) -> bool:
        return can_read(request.user)


class CanOperate(BasePermission):
    """Operator role or staff."""

    message = "This action requires the operator role."

    def has_permission(self, request, view) -> bool:
        return can_operate(request.user)


class CanReadOrOperate(BasePermission):
    """Safe methods for viewers, everything else for operators."""

    message = "Changing data requires the operator role."

    def has_permission(self, request, view) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return can_read(request.user)
        return can_operate(request.user)
