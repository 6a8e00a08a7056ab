import json
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from tqdm import tqdm

from common.exceptions import ApplicationError
from sensors.services.simulator import (
    TARGETS,
    SimulationReport,
    TargetOptions,
    default_target,
    simulated_sensors_ensure,
    simulation_run,
    target_open,
)
from sensors.synthetic.fleet import AnomalyRates, Simulation, sensor_specs

MAX_SENSORS = 10_000
MAX_RATE = 1000.0


class Command(BaseCommand):
    help = (
        "Simulate sensors: realistic readings (daily cycle, noise, drift, injected leaks, spikes and level shifts) "
        "written through the ingestion service, published on Redis pub/sub or on MQTT. See docs/simulator.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("--sensors", type=int, default=5, help="How many sensors (default 5).")
        parser.add_argument(
            "--rate", type=float, default=1.0, help="Readings per second per sensor; fractions allowed (default 1)."
        )
        parser.add_argument(
            "--target",
            choices=sorted(TARGETS),
            help="Where readings go (default: service without REDIS_URL, stream with it).",
        )
        parser.add_argument(
            "--platform", default="demo", metavar="SLUG", help="Platform of the sensors (default demo)."
        )
        parser.add_argument(
            "--duration",
            type=float,
            default=0,
            metavar="SECONDS",
            help="Stop after this many seconds, backfill included (default 0: until Ctrl-C or SIGTERM).",
        )
        parser.add_argument(
            "--backfill", type=float, default=0, metavar="HOURS", help="First write this much history, fast."
        )
        parser.add_argument(
            "--backfill-only", action="store_true", help="Stop after the backfill instead of continuing live."
        )
        parser.add_argument(
            "--interval-step",
            type=float,
            metavar="SECONDS",
            help="Spacing of backfilled readings (default 1/rate; 600 gives the detector's 10-minute cadence).",
        )
        parser.add_argument(
            "--leak-probability",
            type=float,
            default=AnomalyRates.leak,
            metavar="P",
            help=f"Chance a leak starts, per sensor per simulated hour (default {AnomalyRates.leak}).",
        )
        parser.add_argument(
            "--spike-probability",
            type=float,
            default=AnomalyRates.spike,
            metavar="P",
            help=f"Chance a reading is a spike (default {AnomalyRates.spike}).",
        )
        parser.add_argument(
            "--shift-probability",
            type=float,
            default=AnomalyRates.level_shift,
            metavar="P",
            help=f"Chance a level shift starts, per sensor per simulated hour (default {AnomalyRates.level_shift}).",
        )
        parser.add_argument("--seed", type=int, help="Seed for a reproducible series (default: drawn, then printed).")
        parser.add_argument("--labels-out", metavar="FILE", help="Write the injected anomaly windows to FILE (JSON).")
        parser.add_argument("--redis-url", help="Redis of the stream and pubsub targets (default: REDIS_URL).")
        parser.add_argument("--mqtt-url", help="Broker of the mqtt target (default: MQTT_URL).")
        parser.add_argument("--quiet", action="store_true", help="No progress bars; only the summary.")

    def handle(self, *args, **options):
        self._check(options)
        try:
            rates = AnomalyRates(
                leak=options["leak_probability"],
                spike=options["spike_probability"],
                level_shift=options["shift_probability"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        target_name = options["target"] or default_target()
        specs = sensor_specs(options["sensors"])
        simulation = Simulation(specs, seed=options["seed"], rates=rates, zone=ZoneInfo(settings.TIME_ZONE))
        labels_out = Path(options["labels_out"]) if options["labels_out"] else None
        if labels_out and not labels_out.parent.is_dir():
            raise CommandError(f"No directory {str(labels_out.parent)!r} for --labels-out.")

        stop = threading.Event()
        try:
            target = target_open(
                target_name,
                options=TargetOptions(
                    redis_url=options["redis_url"] or settings.REDIS_URL,
                    mqtt_url=options["mqtt_url"] or settings.MQTT_URL,
                ),
            )
            try:
                catalog = simulated_sensors_ensure(platform_slug=options["platform"], sensors=specs)
                self._announce(catalog, target_name, options, simulation)
                with _stop_on_signals(stop):
                    report = simulation_run(
                        simulation=simulation,
                        target=target,
                        rate=options["rate"],
                        duration=options["duration"],
                        backfill_hours=options["backfill"],
                        interval_step=options["interval_step"],
                        backfill_only=options["backfill_only"],
                        stop=stop,
                        progress=None if options["quiet"] else self._progress,
                    )
            finally:
                target.close()
        except ApplicationError as exc:
            raise CommandError(exc.detail) from exc
        except DatabaseError as exc:
            raise CommandError(f"Database error: {str(exc).strip().splitlines()[0]}") from exc

        if labels_out:
            labels_out.write_text(json.dumps(simulation.labels(), indent=2) + "\n", encoding="utf-8")
        self._summary(report, labels_out)

    def _check(self, options) -> None:
        if not 1 <= options["sensors"] <= MAX_SENSORS:
            raise CommandError(f"--sensors must be from 1 to {MAX_SENSORS}.")
        if not 0 < options["rate"] <= MAX_RATE:
            raise CommandError(f"--rate must be above 0 and at most {MAX_RATE:g} readings per second.")
        if options["duration"] < 0:
            raise CommandError("--duration must be 0 (until stopped) or more seconds.")
        if options["backfill"] < 0:
            raise CommandError("--backfill must be 0 or more hours.")
        if options["interval_step"] is not None and options["interval_step"] <= 0:
            raise CommandError("--interval-step must be above 0 seconds.")
        if options["backfill_only"] and not options["backfill"]:
            raise CommandError("--backfill-only needs --backfill HOURS.")

    def _announce(self, catalog, target_name, options, simulation) -> None:
        if catalog.created_platform:
            self.stderr.write(f"Created platform {catalog.platform.slug!r}.")
        if catalog.created_sensors:
            self.stderr.write(f"Created sensors: {', '.join(catalog.created_sensors)}.")
        if catalog.foreign_sensors:
            self.stderr.write(
                self.style.WARNING(f"Already on another platform, left there: {', '.join(catalog.foreign_sensors)}.")
            )
        if not options["quiet"]:
            until = f"for {options['duration']:g} s" if options["duration"] else "until Ctrl-C"
            self.stderr.write(
                f"Simulating {len(simulation.sensors)} sensors at {options['rate']:g}/s each to {target_name} "
                f"{'after the backfill only' if options['backfill_only'] else until} (seed {simulation.seed})."
            )

    def _progress(self, description: str, total: int | None, unit: str):
        return tqdm(
            desc=description, total=total, unit=unit, unit_scale=total is not None, file=_RawWriter(self.stderr)
        )

    def _summary(self, report: SimulationReport, labels_out: Path | None) -> None:
        def count(value):
            return "n/a" if value is None else str(value)

        stopped = " (stopped by signal)" if report.interrupted else ""
        lines = [
            f"Simulated {report.sensors} sensors to {report.target}{stopped}; seed {report.seed}.",
            f"Readings sent: {report.sent} ({report.backfill_readings} backfilled, {report.live_ticks} live ticks); "
            f"stored: {count(report.stored)}, duplicates: {count(report.duplicates)}, "
            f"rejected: {count(report.rejected)}.",
        ]
        if report.unheard:
            lines.append(f"Published with no subscriber listening: {report.unheard}.")
        anomalies = report.anomalies
        lines.append(
            f"Anomalies injected: {anomalies['leak']} leaks, {anomalies['spike']} spikes, "
            f"{anomalies['level_shift']} level shifts."
        )
        if labels_out:
            lines.append(f"Anomaly windows written to {labels_out}.")
        self.stdout.write("\n".join(lines))


class _RawWriter:
    """tqdm redraws its line with carriage returns; Django's OutputWrapper would end each write with a newline."""

    def __init__(self, wrapper) -> None:
        self.wrapper = wrapper

    def write(self, text: str) -> None:
        self.wrapper.write(text, ending="")

    def flush(self) -> None:
        self.wrapper.flush()


@contextmanager
def _stop_on_signals(stop: threading.Event):
    """SIGINT/SIGTERM ask for a clean stop (summary, labels); a second signal interrupts at once."""

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set in the main thread
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
