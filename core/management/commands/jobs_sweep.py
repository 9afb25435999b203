"""``manage.py jobs_sweep``: what Celery beat runs every minute, once, by hand."""

from typing import Any

from django.core.management.base import BaseCommand

from core.jobs import jobs_sweep


class Command(BaseCommand):
    help = (
        "Re-queue or fail background jobs whose worker died, re-send messages that never "
        "reached a worker, and delete orphaned staged files (Celery beat runs this)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = jobs_sweep()
        self.stdout.write(
            f"requeued {report.requeued}, failed {report.failed}, resent {report.resent}, "
            f"housekeeping {report.housekeeping}"
        )
        for label, counts in sorted(report.by_kind.items()):
            details = ", ".join(f"{what} {count}" for what, count in sorted(counts.items()))
            self.stdout.write(f"  {label}: {details}")
