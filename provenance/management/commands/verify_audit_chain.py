from typing import Any

from django.core.management.base import BaseCommand, CommandError

from provenance.services import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the audit log's hash chain and report the first broken link."

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit_chain_verify()
        if report.ok:
            self.stdout.write(
                self.style.SUCCESS(f"Audit chain intact: {report.events_checked} events.")
            )
            return
        raise CommandError(
            f"Audit chain broken at event #{report.first_broken_seq}: {report.reason} "
            f"({report.events_checked} events verified before it)."
        )
