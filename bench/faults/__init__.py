"""The fault suite (`python -m bench.faults`, see `bench/faults/__main__.py`): the project's real processes
against servers of its own that it kills and restarts; results in docs/operations.md, "Guarantees under faults"."""
