"""Helpers of the sensors tests: external sources' answers from recorded files (HTTP is mocked by the root `http`
fixture)."""

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()
