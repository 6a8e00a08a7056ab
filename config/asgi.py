"""ASGI entry point: HTTP through the body cap (common/asgi.py) to Django, WebSockets through Channels.

Each app contributes its WebSocket routes in `<app>/routing.py`; they are combined here.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

# Django must be set up before anything imports models (consumers, auth middleware).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from accounts.websocket import WebSocketAuthMiddleware  # noqa: E402
from common.asgi import RequestBodyLimit  # noqa: E402
from dashboard.routing import websocket_urlpatterns as dashboard_websockets  # noqa: E402
from detection.routing import websocket_urlpatterns as detection_websockets  # noqa: E402
from sensors.routing import websocket_urlpatterns as sensors_websockets  # noqa: E402

websocket_urlpatterns: list = [*sensors_websockets, *detection_websockets, *dashboard_websockets]

application = ProtocolTypeRouter(
    {
        # Bodies over REQUEST_MAX_BODY_BYTES are refused (413) as they arrive, before Django reads them.
        "http": RequestBodyLimit(django_asgi_app),
        # Session cookie from an allowed Origin (browsers) or `Authorization: Token` (scripts): accounts/websocket.py
        "websocket": WebSocketAuthMiddleware(URLRouter(websocket_urlpatterns)),
    }
)
