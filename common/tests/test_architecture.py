"""The import contracts of pyproject.toml (import-linter): kept by the tree, and broken by a forbidden import.

lint-imports reads the source without importing it: a run takes well under a second.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "bench", "dashboard", "archive", "common", "accounts", "sensors", "detection", "rates")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_the_tree_keeps_every_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture
def tree(tmp_path) -> Path:
    """A copy of the project's packages (Python files only) and pyproject.toml."""
    for package in PACKAGES:
        for source in (ROOT / package).rglob("*.py"):
            target = tmp_path / source.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    shutil.copyfile(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("common/db.py", "from sensors import models", "Each layer imports only the layers below it"),
        ("sensors/selectors.py", "import detection.models", "Each layer imports only the layers below it"),
        ("rates/selectors.py", "import detection.models", "Each layer imports only the layers below it"),
        ("sensors/consumers.py", "from detection import engine", "Web-facing modules never import the detector"),
        ("rates/views.py", "import stumpy", "Web-facing modules never import the detector"),
        # common.views imports common.health already
        ("common/health.py", "import common.views", "No import cycles between the modules of a package"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tree, module, line, contract):
    path = tree / module
    path.write_text(path.read_text() + f"\n{line}  # added by the test\n")
    result = lint_imports(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = result.stdout[result.stdout.index("Broken contracts") :]
    assert contract in broken
