"""The one interface every rate provider implements, and the HTTP and parsing helpers they share."""

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.etree.ElementTree import ParseError

import requests
from django.conf import settings

USER_AGENT = "Sensorhub-rates/1.0"
# A published rate must fit the column (30 digits, 18 after the point) with room to spare.
MAX_RATE = Decimal(10) ** 11


class ProviderError(Exception):
    """The provider could not be reached or answered something we cannot trust; the next provider is tried."""


class ProviderNotConfiguredError(ProviderError):
    """The provider needs credentials that are not set; it is skipped, not counted as a failure."""


@dataclass(frozen=True)
class PublishedRate:
    """1 `base` = `rate` `quote`, as the provider published it for `as_of`."""

    base: str
    quote: str
    rate: Decimal
    as_of: date


class RateProvider(ABC):
    """A source of exchange rates. `fetch` returns the rates of one day or raises ProviderError."""

    def check_configured(self) -> None:  # noqa: B027 (most providers need no key)
        """Raise ProviderNotConfiguredError when credentials are missing."""

    @abstractmethod
    def fetch(self, *, session: requests.Session, on: date | None = None) -> list[PublishedRate]:
        """The latest rates, or those of the last day published on or before `on`."""


@contextmanager
def parsing(provider: str) -> Iterator[None]:
    """Turn any error raised while reading a provider's answer into a ProviderError ("returned garbage")."""
    try:
        yield
    except ProviderError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, ArithmeticError, ParseError) as exc:
        raise ProviderError(f"{provider}: unexpected answer ({type(exc).__name__}: {exc})"[:500]) from exc


def parse_rate(value: Any, *, provider: str) -> Decimal:
    """A published rate as an exact Decimal (from a string or a JSON number read as Decimal, never a float)."""
    if isinstance(value, bool | float):
        raise ProviderError(f"{provider}: rate {value!r} is not an exact number")
    try:
        rate = Decimal(str(value).strip()) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise ProviderError(f"{provider}: rate {value!r} is not a number") from exc
    if not rate.is_finite() or rate <= 0 or rate >= MAX_RATE:
        raise ProviderError(f"{provider}: rate {value!r} is out of range")
    return rate


def parse_code(value: Any, *, provider: str) -> str:
    if not isinstance(value, str) or len(value.strip()) != 3 or not value.strip().isalpha():
        raise ProviderError(f"{provider}: {value!r} is not a currency code")
    return value.strip().upper()


def http_get(session: requests.Session, url: str, *, provider: str, **kwargs: Any) -> requests.Response:
    """GET with the configured timeout; network errors and HTTP errors become ProviderError."""
    try:
        response = session.get(url, timeout=settings.RATES_HTTP_TIMEOUT, **kwargs)
    except requests.RequestException as exc:
        raise ProviderError(f"{provider}: {type(exc).__name__}: {exc}"[:500]) from exc
    if response.status_code != 200:
        raise ProviderError(f"{provider}: HTTP {response.status_code} from {url}: {response.text[:200]}")
    return response


def json_body(response: requests.Response, *, provider: str) -> dict[str, Any]:
    """The JSON body with every number read as Decimal (exact), never as float."""
    try:
        body = json.loads(response.content, parse_float=Decimal, parse_int=Decimal)
    except ValueError as exc:
        raise ProviderError(f"{provider}: the answer is not JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise ProviderError(f"{provider}: the answer is not a JSON object")
    return body


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session
