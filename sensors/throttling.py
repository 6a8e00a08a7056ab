"""The throttle of device keys: scope `device` (`API_THROTTLE_DEVICE`), counted per key, so that devices behind one
address (a NAT) do not share one allowance, and a key cannot use up another's."""

from rest_framework.throttling import SimpleRateThrottle


class DeviceKeyRateThrottle(SimpleRateThrottle):
    scope = "device"

    def get_cache_key(self, request, view):
        # Imported here: DRF imports its default throttle classes while `rest_framework.views` is loading.
        from sensors.models import DeviceKey

        if not isinstance(request.auth, DeviceKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
