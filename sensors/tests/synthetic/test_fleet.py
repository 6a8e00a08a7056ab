"""The live simulator's sensors (sensors.synthetic.fleet): pure, so no database."""

import hashlib
from datetime import UTC, datetime, timedelta
from statistics import mean

import pytest

from sensors.synthetic.fleet import PROFILES, AnomalyRates, SensorSpec, Simulation, sensor_specs

START = datetime(2024, 12, 1, tzinfo=UTC)
QUIET = AnomalyRates(leak=0, spike=0, level_shift=0)


def series(simulation: Simulation, *, step: float = 600, count: int = 144) -> list[list]:
    return list(simulation.run(start=START, step=step, count=count))


def values_of(ticks: list[list], key: str) -> list[tuple[datetime, float]]:
    return [(sample.timestamp, sample.value) for tick in ticks for sample in tick if sample.sensor == key]


def test_sensor_specs_name_kinds_in_turn():
    assert [spec.key for spec in sensor_specs(5)] == [
        "sim-gas-1",
        "sim-temperature-1",
        "sim-pressure-1",
        "sim-humidity-1",
        "sim-gas-2",
    ]
    assert all(spec.kind in PROFILES for spec in sensor_specs(9))


def test_same_seed_same_series_and_labels_other_seed_differs():
    def run(seed):
        simulation = Simulation(sensor_specs(4), seed=seed, rates=AnomalyRates(leak=0.2, spike=0.01))
        return series(simulation, count=432), simulation.labels()

    first, second, other = run(42), run(42), run(43)
    assert first == second
    assert first[0] != other[0]
    assert first[1], "the rates above inject anomalies in three days"


def test_a_seed_keeps_giving_the_series_it_always_gave():
    # A seed printed by a past run replays that run (docs/simulator.md): moving code must not change the numbers.
    simulation = Simulation(sensor_specs(4), seed=1, rates=AnomalyRates(leak=0.3, spike=0.02, level_shift=0.1))
    values = [sample.value for tick in series(simulation, count=432) for sample in tick]
    assert hashlib.sha256(repr(values).encode()).hexdigest() == (
        "4c8df9cef0f54d21ff12cd1b1c2af321359789872761240f44e5791f84dff944"
    )
    assert simulation.anomaly_counts() == {"leak": 38, "spike": 37, "level_shift": 15}


def test_a_sensor_series_does_not_depend_on_the_other_sensors():
    alone = Simulation([SensorSpec("sim-gas-1", "gas")], seed=5)
    crowd = Simulation(sensor_specs(8), seed=5)
    assert values_of(series(alone), "sim-gas-1") == values_of(series(crowd), "sim-gas-1")


def test_daily_cycle_day_half_differs_from_night_half_as_designed():
    # Temperature peaks mid-afternoon, humidity before dawn: 09-21 h is the warm, dry half.
    simulation = Simulation(sensor_specs(4), seed=3, rates=QUIET)
    ticks = series(simulation, count=144 * 7)
    for key, sign in (("sim-temperature-1", 1), ("sim-humidity-1", -1)):
        points = values_of(ticks, key)
        day = mean(v for t, v in points if 9 <= t.hour < 21)
        night = mean(v for t, v in points if not 9 <= t.hour < 21)
        amplitude = PROFILES[key.split("-")[1]].amplitude
        # A cosine's day-half mean exceeds its night-half mean by 4/π ≈ 1.27 amplitudes (less phase jitter).
        assert sign * (day - night) == pytest.approx(1.27 * amplitude, rel=0.25)


def test_values_stay_in_the_normal_band_without_anomalies():
    simulation = Simulation(sensor_specs(4), seed=11, rates=QUIET)
    ticks = series(simulation, step=60, count=60 * 24 * 3)
    assert simulation.labels() == []
    for spec in simulation.sensors:
        low, high = spec.profile.normal_band()
        values = [v for _, v in values_of(ticks, spec.key)]
        assert low <= min(values)
        assert max(values) <= high
        assert max(values) - min(values) > spec.profile.amplitude  # it does move


def test_leak_windows_are_labeled_and_rise_above_the_normal_band():
    specs = [SensorSpec("sim-gas-1", "gas")]
    leaky = Simulation(specs, seed=8, rates=AnomalyRates(leak=0.3, spike=0, level_shift=0))
    clean = Simulation(specs, seed=8, rates=QUIET)
    leaky_points = values_of(series(leaky, step=60, count=60 * 48), "sim-gas-1")
    clean_points = values_of(series(clean, step=60, count=60 * 48), "sim-gas-1")

    labels = leaky.labels()
    assert len(labels) >= 2
    assert {label["kind"] for label in labels} == {"leak"}
    assert set(labels[0]) == {"sensor", "kind", "start", "end"}
    windows = [(datetime.fromisoformat(w["start"]), datetime.fromisoformat(w["end"])) for w in labels]
    assert all(start < end for start, end in windows)
    _, high = PROFILES["gas"].normal_band()
    for (start, end), window in zip(windows, leaky.windows(), strict=True):
        inside = [(v, base) for (t, v), (_, base) in zip(leaky_points, clean_points, strict=True) if start <= t <= end]
        assert all(v >= base for v, base in inside)
        assert max(v for v, _ in inside) > high
        assert max(v - base for v, base in inside) == pytest.approx(window.magnitude, abs=0.02)
        assert inside[0][0] - inside[0][1] < 0.1 * window.magnitude  # it rises, not jumps
    # Outside the windows the series is exactly the anomaly-free one.
    outside = [
        (v, base)
        for (t, v), (_, base) in zip(leaky_points, clean_points, strict=True)
        if not any(start <= t <= end for start, end in windows)
    ]
    assert outside
    assert all(v == base for v, base in outside)


def test_spikes_are_single_labeled_outliers():
    specs = [SensorSpec("sim-pressure-1", "pressure")]
    spiky = Simulation(specs, seed=2, rates=AnomalyRates(leak=0, spike=0.02, level_shift=0))
    clean = Simulation(specs, seed=2, rates=QUIET)
    spiky_points = values_of(series(spiky, step=60, count=1440), "sim-pressure-1")
    clean_points = values_of(series(clean, step=60, count=1440), "sim-pressure-1")

    labels = spiky.labels()
    assert len(labels) > 10
    assert all(label["start"] == label["end"] and label["kind"] == "spike" for label in labels)
    spike_times = {datetime.fromisoformat(label["start"]) for label in labels}
    low, high = PROFILES["pressure"].normal_band()
    for (t, v), (_, base) in zip(spiky_points, clean_points, strict=True):
        if t in spike_times:
            assert abs(v - base) >= PROFILES["pressure"].spike[0] - 0.01
        else:
            assert v == base


def test_level_shifts_hold_a_constant_offset_for_their_window():
    specs = [SensorSpec("sim-temperature-1", "temperature")]
    shifted = Simulation(specs, seed=4, rates=AnomalyRates(leak=0, spike=0, level_shift=0.2))
    clean = Simulation(specs, seed=4, rates=QUIET)
    shifted_points = values_of(series(shifted, step=60, count=1440), "sim-temperature-1")
    clean_points = values_of(series(clean, step=60, count=1440), "sim-temperature-1")

    windows = shifted.windows()
    assert windows
    assert {window.kind for window in windows} == {"level_shift"}
    window = windows[0]
    offsets = [
        v - base
        for (t, v), (_, base) in zip(shifted_points, clean_points, strict=True)
        if window.start <= t < window.end
    ]
    assert len(offsets) > 10
    assert all(offset == pytest.approx(window.magnitude, abs=0.011) for offset in offsets)  # 2-decimal rounding
    assert abs(window.magnitude) >= PROFILES["temperature"].shift[0]


def test_wall_clock_pace_irregular_ticks_and_labels_cut_at_the_last_point():
    simulation = Simulation(sensor_specs(2), seed=9, rates=AnomalyRates(leak=1, spike=0, level_shift=0))
    moments = [START, START + timedelta(seconds=1.25), START + timedelta(seconds=2), START + timedelta(minutes=5)]
    for moment in moments:
        simulation.tick(moment)
    labels = simulation.labels()
    assert {label["sensor"] for label in labels} == {"sim-gas-1", "sim-temperature-1"}
    assert all(label["end"] == moments[-1].isoformat() for label in labels)  # the leaks were still going on
    with pytest.raises(ValueError, match="must increase"):
        simulation.tick(START + timedelta(minutes=4))


def test_invalid_rates_and_naive_timestamps_are_refused():
    with pytest.raises(ValueError, match="leak probability"):
        AnomalyRates(leak=1.5)
    with pytest.raises(ValueError, match="timezone-aware"):
        Simulation(sensor_specs(1), seed=1).tick(datetime(2024, 1, 1))  # noqa: DTZ001
