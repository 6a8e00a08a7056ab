"""Rate providers behind one interface (`base.RateProvider`), one module each, looked up by name."""

from django.conf import settings

from rates.models import Provider
from rates.providers.base import ProviderError, ProviderNotConfiguredError, PublishedRate, RateProvider
from rates.providers.demo import DemoProvider
from rates.providers.ecb import EcbProvider
from rates.providers.oxr import OxrProvider
from rates.providers.xe import XeProvider

PROVIDERS: dict[str, type[RateProvider]] = {
    Provider.XE.value: XeProvider,
    Provider.ECB.value: EcbProvider,
    Provider.OXR.value: OxrProvider,
    Provider.DEMO.value: DemoProvider,  # last: never in RATES_PROVIDERS, only for an install without real rates
}

__all__ = [
    "PROVIDERS",
    "ProviderError",
    "ProviderNotConfiguredError",
    "PublishedRate",
    "RateProvider",
    "get_provider",
    "provider_order",
]


def get_provider(name: str) -> RateProvider:
    try:
        return PROVIDERS[name]()
    except KeyError:
        raise ProviderError(f"unknown provider {name!r} (known: {', '.join(PROVIDERS)})") from None


def provider_order() -> list[str]:
    """The configured providers (RATES_PROVIDERS) first, in order, then the others (demo last): the tie-break of
    lookups."""
    configured = [name for name in settings.RATES_PROVIDERS if name in PROVIDERS]
    return configured + [name for name in PROVIDERS if name not in configured]
