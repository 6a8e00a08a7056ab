"""Who is on a WebSocket: the REST API's callers, as far as a socket can carry their credentials.

- Browsers send the session cookie (Channels' `AuthMiddlewareStack`), and only from a page of one of our hosts
  (`AllowedHostsOriginValidator`): a page of another site cannot open a socket with a viewer's cookie (cross-site
  WebSocket hijacking). Browsers cannot set headers on a WebSocket, so the cookie is their only way in.
- Scripts send the REST API's header, `Authorization: Token <token>` (knox). They need no Origin header: no web page
  can make a browser send this header, so it cannot be replayed from another site.
- Devices' `Authorization: Device <key>` is recognised only to be refused by consumers: device keys write readings
  and read nothing. The middleware lets it through unchecked (no user); the consumers look the key up
  (`sensors.consumers.ReadersConsumer`), so that accounts needs no device-key code.

Tokens never travel in the URL (`?token=`): URLs end up in the access logs of servers and proxies and in browser
history, where a secret does not belong. Consumers find `scope["user"]` (`AnonymousUser` when the credentials are
missing or wrong) and `scope["auth"]`: the `AuthToken`, or None for a session or a device key; `reader_refusal`
is the rule for the users of a socket that only reads.
"""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack, get_user
from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator
from django.contrib.auth.models import AnonymousUser

from accounts.roles import can_read
from common.live import FORBIDDEN, UNAUTHENTICATED

TOKEN_SCHEME = b"token"
DEVICE_SCHEME = b"device"


def authorization(scope) -> tuple[bytes, str] | None:
    """(scheme in lower case, credentials) of a Token or Device Authorization header, else None."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, credentials = value.strip().partition(b" ")
            scheme = scheme.lower()
            if scheme in (TOKEN_SCHEME, DEVICE_SCHEME):
                return scheme, credentials.strip().decode("latin-1")
    return None


def header_credentials(scheme: bytes, credentials: str) -> tuple:
    """(user, auth) for an Authorization header, checked exactly as the REST API checks it (a device key: no user,
    the consumer checks the key)."""
    from rest_framework.exceptions import AuthenticationFailed

    from accounts.authentication import TokenAuthentication

    if scheme == DEVICE_SCHEME or not credentials or " " in credentials:
        return AnonymousUser(), None
    try:
        return TokenAuthentication().authenticate_credentials(credentials.encode("latin-1"))
    except AuthenticationFailed:
        return AnonymousUser(), None


class WebSocketAuthMiddleware:
    """ASGI middleware for the `websocket` protocol: header credentials when present (they win over a cookie, as
    knox comes first in the REST API), else the session cookie from an allowed Origin."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.browser = AllowedHostsOriginValidator(AuthMiddlewareStack(inner))

    async def __call__(self, scope, receive, send):
        header = authorization(scope)
        if header is None:
            return await self.browser(scope, receive, send)
        user, auth = await database_sync_to_async(header_credentials)(*header)
        return await self.inner({**scope, "user": user, "auth": auth}, receive, send)


async def scope_reauthenticate(scope: Any) -> Any:  # an ASGI scope (its stubs' TypedDict is private)
    """The caller's credentials loaded again, as a scope with a fresh `user` and `auth`: the header's token checked
    again as at connect (revoked, expired, account no longer allowed: no user), or the session read again from its
    store (logged out, password changed, account no longer allowed: no user). Device keys are left as they are
    (they carry no user; the consumer looks the key up again)."""
    header = authorization(scope)
    if header is not None:
        user, auth = await database_sync_to_async(header_credentials)(*header)
        return {**scope, "user": user, "auth": auth}
    session = scope.get("session")
    if session is None or not session.session_key:
        return {**scope, "user": AnonymousUser(), "auth": None}
    from importlib import import_module

    from django.conf import settings

    fresh = import_module(settings.SESSION_ENGINE).SessionStore(session.session_key)
    fresh_scope: Any = {**scope, "session": fresh}
    return {**fresh_scope, "user": await get_user(fresh_scope), "auth": None}


async def reader_refusal(scope) -> tuple[int, str] | None:
    """Why the user of `scope` may not read, as (close code, detail), or None: viewers, operators and staff may."""
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return UNAUTHENTICATED, "Log in, or send 'Authorization: Token <token>'."
    if not await database_sync_to_async(can_read)(user):
        return FORBIDDEN, "The viewer role (or above) is needed."
    return None
