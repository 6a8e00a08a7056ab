"""Load with locust: device writes, dashboard reads and live WebSocket clients together against the production
processes. `python -m bench.load --help`; the scenario is `locustfile.py`, the runner `runner.py`
(docs/benchmarks.md, "Load")."""
