"""Synthetic sensor series: every generator of made-up readings, pure and seedable (no Django, no database, no I/O).

One package for the three users, each module a signal family:

- `signals`: the normal signal (daily cycles, weekends, a bounded random walk, a flow scaled to a mean and variance);
- `anomalies`: what is injected into it (anomaly kinds, the simulator's leak curve, the labeled sets' planted
  anomalies);
- `fleet`: the live simulator's sensors, read tick by tick (`manage.py simulate_sensors`, docs/simulator.md);
- `labeled`: the labeled series of the detection quality benchmark (`bench/detection_data.py`, docs/detection.md).

The seed baselines (`detection/data/generate_seeds.py`) are a flow from `signals`. It lives in `sensors` (not
`common`) because its models are sensor kinds with their units, and detection, above sensors, may import it.
"""
