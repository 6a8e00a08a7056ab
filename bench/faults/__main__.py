"""The fault suite: real processes against servers of its own, each scenario ending with exact counts.

    .venv/bin/python -m bench.faults [--readings 100000] [--scenario a,b,c,d,e,f] [--kills 6] [--seed N]

It needs redis-server, mosquitto and PostgreSQL 15's binaries (PG_BIN, default /usr/lib/postgresql/15/bin) on this
machine, and never touches the servers in DATABASE_URL, REDIS_URL or MQTT_URL: it starts its own redis-server
(append-only file, appendfsync everysec, as docker-compose.yml), mosquitto (persistence, as config/mosquitto.conf)
and a throwaway PostgreSQL cluster (run as the `postgres` user when started as root) on free ports in a temporary
directory, migrates it, and restarts those. Scenarios (docs/operations.md, "Guarantees under faults"):

  a  kill -9 of `consume_readings --source stream` at random moments during --readings readings (--kills times)
  b  PostgreSQL restart (fast) and crash (immediate) during stream ingest
  c  Redis SIGTERM + restart, then kill -9 + restart, during stream ingest
  d  mosquitto SIGTERM + restart, then kill -9 + restart, during MQTT ingest (--mqtt-readings)
  e  kill -9 of a Celery worker's pool process in the middle of a baseline selection job
  f  celery beat (DatabaseScheduler) restarted after admin edits of the periodic tasks

It prints one line per scenario: expected, stored, lost, duplicated, and exits 1 when a guarantee did not hold.
`--keep` leaves the temporary directory (logs of every process) in place.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.faults.servers import OwnMosquitto, OwnPostgres, OwnRedis


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=100_000, help="stream readings per scenario a-c")
    parser.add_argument("--mqtt-readings", type=int, default=20_000)
    parser.add_argument("--scenario", default="a,b,c,d,e,f", help="comma-separated letters")
    parser.add_argument("--kills", type=int, default=6, help="consumer kills in scenario a (at least 5 asked)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds over which the readings are sent")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory and its logs")
    args = parser.parse_args()
    scenarios = [s.strip() for s in args.scenario.split(",") if s.strip()]
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)

    workdir = Path(tempfile.mkdtemp(prefix="sensorhub-faults-"))
    os.chmod(workdir, 0o755)  # noqa: S103 (the postgres and mosquitto users reach their directories through it)
    redis_server, mosquitto, postgres = OwnRedis(workdir), OwnMosquitto(workdir), OwnPostgres(workdir)
    outcomes = []
    started = time.monotonic()
    try:
        postgres.init()
        redis_server.start()
        mosquitto.start()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.dev",
            "DJANGO_DEBUG": "False",
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis_server.url,
            "CELERY_BROKER_URL": redis_server.url,
            "MQTT_URL": mosquitto.url,
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "json",
        }
        os.environ.update({**env, "LOG_LEVEL": "WARNING"})
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(f"servers in {workdir}: PostgreSQL :{postgres.port}, Redis :{redis_server.port}, "
              f"mosquitto :{mosquitto.port}; seed {seed}", flush=True)  # fmt: skip

        from bench.faults import ingest, jobs

        common = {"env": env, "workdir": workdir}
        n, duration = args.readings, args.duration
        for letter in scenarios:
            done = len(outcomes)
            if letter == "a":
                outcomes.append(ingest.consumer_kills(redis_url=redis_server.url, prefix="fa", n=n, kills=args.kills,
                                                      duration=duration, seed=seed, **common))  # fmt: skip
            elif letter == "b":
                outcomes.append(ingest.postgres_restarts(redis_url=redis_server.url, prefix="fb", n=n,
                                                         duration=duration, postgres=postgres, **common))  # fmt: skip
            elif letter == "c":
                for kill, prefix in ((False, "fc"), (True, "fck")):
                    outcomes.append(ingest.redis_restart(redis_server=redis_server, prefix=prefix, n=n,
                                                         duration=duration, kill=kill, **common))  # fmt: skip
            elif letter == "d":
                for kill, prefix in ((False, "fd"), (True, "fdk")):
                    outcomes.append(ingest.mqtt_restart(mosquitto=mosquitto, prefix=prefix, n=args.mqtt_readings,
                                                        duration=duration, kill=kill, **common))  # fmt: skip
            elif letter == "e":
                outcomes.append(jobs.worker_kill(redis_url=redis_server.url, **common))
            elif letter == "f":
                outcomes.append(jobs.beat_restart(**common))
            else:
                parser.error(f"unknown scenario {letter!r}")
            for outcome in outcomes[done:]:
                print(row(outcome), flush=True)
    finally:
        for server in (mosquitto, redis_server, postgres):
            server.close()
        if args.keep:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(table(outcomes))
    print(f"\n{len(outcomes)} scenarios in {time.monotonic() - started:.0f} s")
    return 0 if all(o.ok for o in outcomes) else 1


def row(o) -> str:
    redelivered = "" if o.redelivered is None else f", {o.redelivered} redelivered"
    return (f"{o.scenario}: expected {o.expected}, stored {o.stored}, lost {o.lost}, duplicated {o.duplicated}"
            f"{redelivered} ({o.seconds:.0f} s) — {o.faults}{'; ' + o.note if o.note else ''}")  # fmt: skip


def table(outcomes) -> str:
    lines = [
        "| scenario | faults | expected | stored | lost | duplicated | redelivered | s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for o in outcomes:
        redelivered = "" if o.redelivered is None else str(o.redelivered)
        faults = o.faults + (f"; {o.note}" if o.note else "")
        lines.append(f"| {o.scenario} | {faults} | {o.expected} | {o.stored} | {o.lost} | {o.duplicated} | "
                     f"{redelivered} | {o.seconds:.0f} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
