from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from common.health import system_health


@never_cache
@require_GET
def healthcheck(request: HttpRequest) -> JsonResponse:
    """200 with each part's state, or 503 naming the parts that are down."""
    health = system_health()
    return JsonResponse(health, status=503 if health["down"] else 200)


@never_cache
@require_GET
def liveness(request: HttpRequest) -> JsonResponse:
    """The process answers HTTP; for container probes that must not fail when a dependency is down."""
    return JsonResponse({"status": "ok"})
