"""The package as a whole (sensors/synthetic/__init__.py): pure, usable without Django."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_package_and_the_seed_generator_import_neither_django_nor_bench():
    # The seed generator and the benchmarks run as plain scripts: the generators must not need settings or a database.
    code = (
        "import sys\n"
        "import detection.data.generate_seeds, sensors.synthetic.fleet, sensors.synthetic.labeled\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'bench'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)  # noqa: S603
