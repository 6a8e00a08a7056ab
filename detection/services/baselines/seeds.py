"""The seed baselines: the committed `detection/data/seeds.json`, read, checked and loaded (`load_baselines`).

Seeds describe normal variation for sensors that have none of their own yet; new sensors start from the default
one (DETECTION_DEFAULT_SEED). Loading is idempotent, and a changed seed replaces the old row (never changed in
place), its users following it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.db import transaction

from common.exceptions import ApplicationError
from detection import engine
from detection.models import Baseline, DetectorSettings
from detection.services.baselines.build import baseline_create

SEEDS_FILE = Path(__file__).resolve().parents[2] / "data" / "seeds.json"
SEEDS_FORMAT = "sensorhub-baselines/1"


@dataclass
class LoadResult:
    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)


def _seeds_read(path: Path) -> list[dict[str, Any]]:
    """The file's baselines, checked for shape; ApplicationError (one line) on anything else."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ApplicationError(f"No such file: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ApplicationError(f"Cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ApplicationError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != SEEDS_FORMAT or not isinstance(data.get("baselines"), list):
        raise ApplicationError(f'{path}: expected {{"format": "{SEEDS_FORMAT}", "baselines": [...]}}')
    entries, names = [], set()
    for number, entry in enumerate(data["baselines"], start=1):
        where = f"{path}: baseline {number}"
        if not isinstance(entry, dict):
            raise ApplicationError(f"{where} is not an object")
        name, window, values = entry.get("name"), entry.get("window"), entry.get("values")
        if not isinstance(name, str) or not name or len(name) > 100:
            raise ApplicationError(f"{where}: 'name' must be a string of 1-100 characters")
        if name in names:
            raise ApplicationError(f"{where}: the name {name!r} appears twice")
        names.add(name)
        if not isinstance(window, int) or isinstance(window, bool):
            raise ApplicationError(f"{where} ({name}): 'window' must be an integer")
        if not isinstance(values, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
        ):
            raise ApplicationError(f"{where} ({name}): 'values' must be a list of finite numbers")
        try:
            engine.baseline_check(np.asarray(values, dtype=np.float64), window)
        except engine.SeriesError as exc:
            raise ApplicationError(f"{where} ({name}): {exc}") from exc
        if min(values) == max(values):
            # A sensor's own constant readings make a baseline (any change is then critical); a seed is meant to
            # describe normal variation for sensors that have none of their own, so a constant one is a mistake.
            raise ApplicationError(f"{where} ({name}): a seed must vary; every value is {values[0]!r}")
        entries.append(
            {"name": name, "window": window, "values": values, "description": str(entry.get("description", ""))}
        )
    if not entries:
        raise ApplicationError(f"{path}: no baselines in the file")
    return entries


@transaction.atomic
def baselines_load(*, path: Path = SEEDS_FILE, replace: bool = False) -> LoadResult:
    """Load the seed baselines of `path` (the shipped `detection/data/seeds.json` by default) through
    `baseline_create`, so their stats are computed here, never taken from the file.

    Idempotent: a seed already stored with the same window and values is left as it is. A seed of that name with
    other values or window is refused (ApplicationError, nothing loaded) unless `replace`: then the old row is
    deleted and a new one made (never changed in place: workers cache detectors by baseline id), and the sensors
    whose settings named the old one name the new one, so their detectors restart from it.
    """
    result = LoadResult()
    entries = _seeds_read(path)
    existing = {b.name: b for b in Baseline.objects.filter(name__in=[e["name"] for e in entries])}
    for entry in entries:
        old = existing.get(entry["name"])
        if old is not None and old.kind != Baseline.Kind.SEED:
            raise ApplicationError(f"{entry['name']!r} names a {old.kind} baseline of a sensor, not a seed")
        values = np.asarray(entry["values"], dtype=np.float64)
        if old is not None and old.window == entry["window"] and np.array_equal(old.array(), values):
            result.unchanged.append(old.name)
            continue
        if old is not None and not replace:
            raise ApplicationError(
                f"The seed {old.name!r} is stored with other values or window; use --replace to replace it"
            )
        users = []
        if old is not None:
            users = list(DetectorSettings.objects.filter(baseline=old).values_list("pk", flat=True))
            old.delete()
        try:
            new = baseline_create(
                name=entry["name"],
                kind=Baseline.Kind.SEED,
                values=values,
                window=entry["window"],
                description=entry["description"],
            )
        except engine.SeriesError as exc:
            raise ApplicationError(f"{path}: {entry['name']}: {exc}") from exc
        if old is not None:
            DetectorSettings.objects.filter(pk__in=users).update(baseline=new)
            result.replaced.append(new.name)
        else:
            result.created.append(new.name)
    return result
