from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from common.exceptions import ApplicationError
from detection.services.baselines import SEEDS_FILE, baselines_load


class Command(BaseCommand):
    help = (
        "Load seed baselines (default: the shipped detection/data/seeds.json); stats are computed, not read. "
        "Idempotent: seeds already stored with the same values are left alone; a seed whose values differ is "
        "refused unless --replace."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", type=Path, default=SEEDS_FILE)
        parser.add_argument(
            "--replace", action="store_true", help="Replace stored seeds whose values differ from the file's."
        )

    def handle(self, *args, file: Path, replace: bool, **options):
        try:
            result = baselines_load(path=file, replace=replace)
        except ApplicationError as exc:
            raise CommandError(exc.detail) from exc
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (
                ("created", result.created),
                ("replaced", result.replaced),
                ("unchanged", result.unchanged),
            )
            if names
        ]
        total = len(result.created) + len(result.replaced) + len(result.unchanged)
        self.stdout.write(f"Seed baselines from {file}: {total} ({'; '.join(parts)}).")
