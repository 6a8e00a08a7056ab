from pathlib import Path

from django.core.management.base import BaseCommand

from archive.services.schema import schema_sql


class Command(BaseCommand):
    help = (
        "Write the SQL DDL of the whole schema for PostgreSQL (every table, index and constraint, as migrate makes "
        "them), rendered without connecting to any database. docs/archive.md"
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", type=Path, help="file to write (default: stdout)")

    def handle(self, *args, output: Path | None, **options):
        sql = schema_sql()
        if output is None:
            self.stdout.write(sql, ending="")
        else:
            output.write_text(sql, encoding="utf-8")
            self.stderr.write(f"Wrote the schema ({sql.count(chr(10)):,} lines) to {output}.")
