"""fetch_rates and import_rates: a summary on stdout, a progress bar on stderr, errors as CommandError."""

from datetime import date
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from rates.models import ExchangeRate
from rates.tests.conftest import ECB_90D, ECB_DAILY, FIXTURES, fixture_bytes
from rates.tests.history import write_history

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_fetch_rates_from_one_provider(http):
    http.get(ECB_DAILY, body=fixture_bytes("ecb_daily.xml"))
    out, err = run("fetch_rates", "--provider", "ecb")
    assert out.strip() == "Stored 12 rates from ecb as of 2024-06-03."
    assert "ecb" in err  # the progress bar's description
    assert ExchangeRate.objects.count() == 12


def test_fetch_rates_for_a_date(http):
    http.get(ECB_90D, body=fixture_bytes("ecb_hist_90d.xml"))
    out, _ = run("fetch_rates", "--provider", "ecb", "--date", "2024-06-01")
    assert "as of 2024-05-31" in out


def test_fetch_rates_failure_is_a_command_error(http, settings):
    settings.RATES_PROVIDERS = ["ecb"]
    http.get(ECB_DAILY, status=502)
    with pytest.raises(CommandError, match="HTTP 502"):
        run("fetch_rates")


def test_import_rates_csv_and_again(tmp_path):
    out, err = run("import_rates", str(FIXTURES / "ecb_hist.csv"))
    assert "Imported 22 published rates (44 rows with inverses) over 5 days (2004-12-31 to 2024-06-03)" in out
    assert "5/5" in err  # tqdm's bar reached the end
    out, _ = run("import_rates", str(FIXTURES / "ecb_hist.csv"))
    assert ExchangeRate.objects.count() == 44


def test_import_rates_zip_of_a_few_thousand_days(tmp_path):
    path = write_history(tmp_path / "eurofxref-hist.zip", 1000)
    out, _ = run("import_rates", str(path))
    stored = ExchangeRate.objects.filter(provider="ecb", is_inverse=False)
    assert f"Imported {stored.count()} published rates" in out
    assert stored.count() > 30_000
    assert stored.values("as_of").distinct().count() == 1000
    assert stored.latest("as_of").as_of == date(2024, 6, 3)
    assert not stored.filter(quote="CYP", as_of__year__gt=2007).exists()


def test_import_rates_missing_or_bad_file(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        run("import_rates", str(tmp_path / "nope.csv"))
    bad = tmp_path / "bad.csv"
    bad.write_text("When,USD\n")
    with pytest.raises(CommandError, match="Date column"):
        run("import_rates", str(bad))
