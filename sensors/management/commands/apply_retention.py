from django.core.management.base import BaseCommand

from sensors.services.retention import raw_retention_apply


class Command(BaseCommand):
    help = (
        "Drop the raw readings (and detections) past their retention, as the nightly schedule does, after verifying "
        "their hourly roll-ups. With --dry-run, print what would go and change nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print what would go; drop nothing.")

    def handle(self, *args, dry_run, **options):
        report = raw_retention_apply(dry_run=dry_run)
        verb = "would drop" if dry_run else "dropped"
        if not report.groups:
            self.stdout.write("No retention is set (SENSORS_RAW_RETENTION_DAYS, platforms' own): nothing goes.")
            return
        for group in report.groups:
            who = ", ".join(group.platforms) if group.platforms else "site-wide setting"
            self.stdout.write(
                f"{group.days} days ({who}; {len(group.sensor_ids)} sensors): raw readings before "
                f"{group.bound:%Y-%m-%d %H:%M}Z go (cutoff {group.cutoff:%Y-%m-%d %H:%M}Z)"
            )
        for partition in report.partitions:
            self.stdout.write(
                f"partition {partition['name']} [{partition['start']}, {partition['end']}): {verb} whole, "
                f"{partition['rows']:,} raw readings"
            )
        for group in report.groups:
            if group.rows or any(group.hooks.values()):
                extra = "".join(f", {count:,} {name}" for name, count in sorted(group.hooks.items()))
                self.stdout.write(f"{group.days} days: {group.rows:,} raw readings in batches{extra} ({verb})")
        if not dry_run and report.hours_completed:
            self.stdout.write(f"{report.hours_completed:,} hourly roll-ups completed from raw readings first")
        self.stdout.write(report.summary())
