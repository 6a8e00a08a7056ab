"""Benchmark scripts (SPEC §8): run from the project root as `python -m bench.<name>`; each prints its figures."""
