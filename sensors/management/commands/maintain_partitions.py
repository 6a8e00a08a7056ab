from django.core.management.base import BaseCommand

from sensors.services.partitions import partitioned, partitions_list, partitions_maintain


class Command(BaseCommand):
    help = (
        "Create the readings' time partitions due ahead of now, and partitions for readings waiting in the default "
        "one, as the hourly schedule does (PostgreSQL; SQLite keeps one plain table). Lists the partitions."
    )

    def handle(self, *args, **options):
        if not partitioned():
            self.stdout.write("The readings table is not partitioned here (SQLite): nothing to do.")
            return
        result = partitions_maintain()
        for partition in partitions_list():
            mark = " (new)" if partition.name in result.created else ""
            self.stdout.write(f"{partition.name}: [{partition.start:%Y-%m-%d}, {partition.end:%Y-%m-%d}){mark}")
        self.stdout.write(
            f"{len(result.created)} partition(s) created, {result.moved_from_default:,} readings moved out of the "
            "default partition."
        )
