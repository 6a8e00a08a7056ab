import pytest

from detection import engine
from detection.services.detector_cache import detector_cache_clear


@pytest.fixture(scope="session", autouse=True)
def _stumpy_compiled():
    """Compile (or load from NUMBA_CACHE_DIR) stumpy's functions once for the session."""
    engine.warm()


@pytest.fixture(autouse=True)
def _fresh_detectors():
    """Each test starts with no detector kept in memory (as a newly started worker)."""
    detector_cache_clear()
    yield
    detector_cache_clear()


@pytest.fixture
def baseline_method(settings):
    """New sensors are detected with the baseline method (the leak service's matrix profile), not the default
    discord method: for the tests of what that method does (baselines, feedback, its levels)."""
    settings.DETECTION_METHOD = "baseline"
