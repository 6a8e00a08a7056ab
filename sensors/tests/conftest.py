"""Fixtures of the sensors tests: external sources' answers from recorded files, HTTP mocked with `responses`."""

from pathlib import Path

import pytest
import responses

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture
def http():
    """Third-party HTTP only, answered from recordings; a request nobody registered fails the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
