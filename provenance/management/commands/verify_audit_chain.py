from typing import Any

from django.core.management.base import BaseCommand, CommandError

from provenance.services import audit_chain_checkpoint_advance


class Command(BaseCommand):
    help = (
        "Verify the whole audit log's hash chain from its first event, record the result "
        "as the last full check (the audit page shows it) and report the first broken link."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit_chain_checkpoint_advance(full=True)
        if report.ok:
            self.stdout.write(
                self.style.SUCCESS(f"Audit chain intact: {report.events_checked} events.")
            )
            return
        raise CommandError(
            f"Audit chain broken at event #{report.first_broken_seq}: {report.reason} "
            f"({report.events_checked} events verified before it)."
        )
