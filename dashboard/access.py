"""Who may open the dashboard's pages: the same rules as the API and the live sockets (`accounts.roles`). Every
page view takes one of these two decorators."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from accounts.roles import can_operate, can_read


def reader_required(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Viewers, operators and staff: anonymous callers go to the login page, users without a role get 403."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not can_read(request.user):
            raise PermissionDenied("The dashboard requires the viewer role.")
        return view(request, *args, **kwargs)

    return wrapped


def operator_required(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Operators and staff (pages that change data or start jobs): anonymous callers go to the login page, viewers
    and users without a role get 403, whatever the method (a forged POST too)."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not can_operate(request.user):
            raise PermissionDenied("This needs the operator role.")
        return view(request, *args, **kwargs)

    return wrapped
