"""Benchmark scripts (figures and targets in docs/benchmarks.md): run from the project root as
`python -m bench.<name>`; each prints its figures."""
