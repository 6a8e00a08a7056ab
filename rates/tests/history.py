"""Synthetic ECB historical files in the published layout, for the import tests and for measuring its speed.

python -m rates.tests.history OUT.csv [DAYS]   (or OUT.zip)
"""

import io
import random
import sys
import zipfile
from datetime import date, timedelta
from pathlib import Path

# The columns of the ECB file, in its order, including the currencies that left it (N/A after they did).
COLUMN_NAMES = (
    "USD JPY BGN CYP CZK DKK EEK GBP HUF LTL LVL MTL PLN ROL RON SEK SIT SKK CHF ISK NOK HRK RUB TRL TRY AUD BRL "
    "CAD CNY HKD IDR ILS INR KRW MXN MYR NZD PHP SGD THB ZAR"
)
COLUMNS = tuple(COLUMN_NAMES.split())
LEFT = {"CYP": 2007, "MTL": 2007, "SIT": 2006, "SKK": 2008, "EEK": 2010, "LVL": 2013, "LTL": 2014, "ROL": 2005}


def history_csv(days: int, *, seed: int = 4217, end: date = date(2024, 6, 3)) -> str:
    """`days` working days back from `end`, newest first, `N/A` where a currency had no rate, trailing commas."""
    rng = random.Random(seed)  # noqa: S311 (test data, not security)
    levels = {code: rng.uniform(0.5, 2000) for code in COLUMNS}
    out = io.StringIO()
    out.write("Date," + ",".join(COLUMNS) + ",\n")
    day, written = end, 0
    while written < days:
        if day.weekday() < 5:
            cells = []
            for code in COLUMNS:
                if (code in LEFT and day.year > LEFT[code]) or rng.random() < 0.01:
                    cells.append("N/A")
                else:
                    levels[code] *= 1 + rng.uniform(-0.004, 0.004)
                    cells.append(f"{levels[code]:.4f}")
            out.write(day.isoformat() + "," + ",".join(cells) + ",\n")
            written += 1
        day -= timedelta(days=1)
    return out.getvalue()


def write_history(path: Path, days: int) -> Path:
    text = history_csv(days)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("eurofxref-hist.csv", text)
    else:
        path.write_text(text)
    return path


if __name__ == "__main__":
    write_history(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 6500)
