"""European Central Bank euro foreign exchange reference rates (no key).

- Daily: `eurofxref-daily.xml`, a gesmes envelope whose `<Cube time="YYYY-MM-DD">` holds
  `<Cube currency="USD" rate="1.0842"/>` elements; 1 EUR = rate currency. Published on working days ~16:00 CET.
- The last 90 days in the same format: `eurofxref-hist-90d.xml` (used for `fetch(on=...)`).
- The whole history: `eurofxref-hist.zip` holding `eurofxref-hist.csv`: header `Date,USD,JPY,...,` (note the
  trailing comma), newest date first, `N/A` (or an empty cell) where a currency had no rate that day.
"""

import csv
import io
import zipfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import urljoin

import requests
from defusedxml import ElementTree
from django.conf import settings

from rates.models import Provider
from rates.providers.base import (
    ProviderError,
    PublishedRate,
    RateProvider,
    http_get,
    parse_code,
    parse_rate,
    parsing,
)

NAME = Provider.ECB.value
BASE = "EUR"
EUROFXREF_NS = "{http://www.ecb.int/vocabulary/2002-08-01/eurofxref}"
MISSING = {"", "N/A"}


def parse_reference_xml(content: bytes) -> dict[date, list[PublishedRate]]:
    """Every day in a daily or 90-day reference-rate XML file, with its rates."""
    days: dict[date, list[PublishedRate]] = {}
    with parsing(NAME):
        root = ElementTree.fromstring(content)
        for day_cube in root.iter(f"{EUROFXREF_NS}Cube"):
            if "time" not in day_cube.attrib:
                continue
            as_of = date.fromisoformat(day_cube.attrib["time"])
            days[as_of] = [
                PublishedRate(
                    BASE,
                    parse_code(cube.attrib["currency"], provider=NAME),
                    parse_rate(cube.attrib["rate"], provider=NAME),
                    as_of,
                )
                for cube in day_cube
                if cube.tag == f"{EUROFXREF_NS}Cube"
            ]
    if not days or not any(days.values()):
        raise ProviderError("ecb: the file holds no rates")
    return days


def iter_history_csv(lines: Iterator[str]) -> Iterator[PublishedRate]:
    """Rates of the historical CSV, cell by cell; `N/A` and empty cells (and the trailing column) are skipped.

    Raises ProviderError naming the line of a malformed row.
    """
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise ProviderError("ecb: the historical file is empty") from None
    if not header or header[0].strip() != "Date":
        raise ProviderError("ecb: the historical file does not start with a Date column")
    codes = [parse_code(name, provider=NAME) if name.strip() else None for name in header[1:]]
    for row in reader:
        if not row or not row[0].strip():
            continue
        with parsing(NAME):
            try:
                as_of = date.fromisoformat(row[0].strip())
                for code, cell in zip(codes, row[1:], strict=False):
                    if code is None or cell.strip() in MISSING:
                        continue
                    yield PublishedRate(BASE, code, parse_rate(cell, provider=NAME), as_of)
            except (ValueError, ProviderError) as exc:
                raise ProviderError(f"ecb: line {reader.line_num}: {exc}") from exc


def open_history(path: Path) -> io.TextIOBase:
    """The historical CSV as text, from the `.csv` itself or from the `.zip` that holds it."""
    if zipfile.is_zipfile(path):
        archive = zipfile.ZipFile(path)
        members = [name for name in archive.namelist() if name.lower().endswith(".csv")]
        if not members:
            raise ProviderError(f"ecb: {path.name} holds no .csv file")
        return io.TextIOWrapper(archive.open(members[0]), encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def count_history_days(path: Path) -> int:
    """Data lines of the historical file (for a progress bar), without parsing them."""
    with open_history(path) as stream:
        return max(sum(1 for line in stream if line.strip()) - 1, 0)


class EcbProvider(RateProvider):
    def fetch(self, *, session: requests.Session, on: date | None = None) -> list[PublishedRate]:
        if on is None:
            response = http_get(session, urljoin(settings.RATES_ECB_URL, "eurofxref-daily.xml"), provider=NAME)
            days = parse_reference_xml(response.content)
            return days[max(days)]
        response = http_get(session, urljoin(settings.RATES_ECB_URL, "eurofxref-hist-90d.xml"), provider=NAME)
        days = parse_reference_xml(response.content)
        earlier = [day for day in days if day <= on]
        if not earlier:
            raise ProviderError(
                f"ecb: {on} is older than the 90-day file (from {min(days)}); import the history with import_rates"
            )
        return days[max(earlier)]
