"""Throttles shared by every app (docs/operations.md, "Security"). The client address they count comes from
DRF's `get_ident`: the TCP peer, or X-Forwarded-For behind `TRUSTED_PROXY_COUNT` trusted proxies (`NUM_PROXIES`)."""

from rest_framework import throttling


class AnonRateThrottle(throttling.AnonRateThrottle):
    """DRF's per-address rate for callers without credentials. A request authenticated by a credential that is not
    a user (a device key: `request.user` anonymous, `request.auth` set) is counted by that credential's own
    throttle instead (`sensors.throttling.DeviceKeyRateThrottle`), not with everyone behind the same address."""

    def get_cache_key(self, request, view):
        if request.auth is not None:
            return None
        return super().get_cache_key(request, view)
