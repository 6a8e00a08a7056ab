"""Who may open the dashboard's pages: the same rules as the API and the live sockets (`accounts.roles`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from accounts.roles import can_read


def reader_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Viewers, operators and staff: anonymous callers go to the login page, users without a role get 403."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_read(request.user):
            raise PermissionDenied("The dashboard requires the viewer role.")
        return view(request, *args, **kwargs)

    return wrapped
