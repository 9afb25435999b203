"""``manage.py create_demo``: two labeled demo projects, a simulated crowd, and the logins.

Idempotent: when the demo is already there it prints the logins again and stops.

``--reset`` rebuilds it. Audit events are append-only and protect the users they name, so
demo rows cannot be deleted one by one; instead ``--reset`` flushes the whole database
(and deletes the item files the flushed rows pointed to), and only on the embedded SQLite
database that ``make demo`` uses. On any other database it refuses when demo data exists:
start from a fresh database there.
"""

from argparse import ArgumentParser
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from core.errors import ApplicationError
from demo.campaign import (
    DEMO_URL,
    DemoOptions,
    DemoReport,
    demo_build,
    demo_exists,
    demo_logins,
    demo_media_names,
    demo_usernames_taken,
    media_delete,
)
from demo.errors import DemoError
from demo.personas import SIMULATED_EFFECTS


class Command(BaseCommand):
    help = (
        "Create the demo: a photo-privacy and a hate-speech project, a researcher, an "
        "auditor, an admin and simulated annotators who consent, answer the survey and "
        "label through the services; then print the logins. --reset rebuilds it (embedded "
        "SQLite only: it flushes the database)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        defaults = DemoOptions()
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Rebuild: flush the embedded SQLite database first (refused on others).",
        )
        parser.add_argument("--annotators", type=int, default=defaults.annotators)
        parser.add_argument("--images", type=int, default=defaults.images)
        parser.add_argument("--texts", type=int, default=defaults.texts)
        parser.add_argument("--seed", type=int, default=defaults.seed)

    def handle(self, *args: Any, **options: Any) -> None:
        demo_options = DemoOptions(
            annotators=options["annotators"],
            images=options["images"],
            texts=options["texts"],
            seed=options["seed"],
        )
        try:
            demo_options.validate()
        except DemoError as error:
            raise CommandError(str(error)) from error
        exists = demo_exists()
        clashes = [] if exists else demo_usernames_taken()
        if (exists or clashes) and not options["reset"]:
            if exists:
                self.stdout.write("The demo is already set up (use --reset to rebuild it).")
                self._print_logins()
                return
            raise CommandError(
                f"Users {', '.join(clashes)} exist but the demo does not. Remove them, use a "
                "fresh database, or --reset on the embedded SQLite database."
            )
        if exists or clashes:
            self._flush()
        try:
            report = demo_build(options=demo_options, log=self.stdout.write)
        except (DemoError, ApplicationError) as error:
            raise CommandError(f"The demo could not be built: {error}") from error
        self._print_report(report)
        self._print_logins()

    def _flush(self) -> None:
        if connection.vendor != "sqlite":
            raise CommandError(
                "--reset flushes the whole database, so it runs only on the embedded SQLite "
                f"database; this one is {connection.vendor}. Use a fresh database instead."
            )
        orphans = demo_media_names()
        self.stdout.write(
            self.style.WARNING("--reset: flushing the embedded SQLite database (all rows).")
        )
        call_command("flush", interactive=False, verbosity=0)
        removed = media_delete(orphans)
        self.stdout.write(f"Removed {removed} stored item files of the flushed database.")

    def _print_report(self, report: DemoReport) -> None:
        write = self.stdout.write
        write("")
        write(self.style.SUCCESS(f"Demo built in {report.seconds:.1f} s."))
        for project in report.projects:
            progress = project.progress
            write(f"\n{project.title}  [{project.modality}, k={project.k}]")
            write(
                f"  items {progress['items']}, fully labeled {progress['items_complete']} "
                f"({progress['percent_complete']}%), labels {progress['labels']} "
                f"(+{progress['labels_withdrawn']} withdrawn, excluded)"
            )
            write(f"  labels per item: {progress['labels_per_item']}")
            write(
                f"  annotators: {project.enrolled} consented, "
                f"{progress['annotators_withdrawn']} withdrew ({', '.join(project.withdrawn)}); "
                f"survey answered by {project.surveys_full}, partly 'prefer not to say' "
                f"by {project.surveys_partial}, skipped by {project.surveys_skipped}; "
                f"items skipped: {project.skipped_items}"
            )
            agreement = project.agreement
            if agreement.get("alpha") is not None:
                write(
                    f"  agreement: Krippendorff's alpha {agreement['alpha']:.3f}, "
                    f"percent agreement {agreement['percent_agreement']:.3f}, "
                    f"mean item entropy {agreement.get('mean_entropy') or 0:.3f} "
                    "(see the project's Analysis page)"
                )
            dataset = project.dataset
            if dataset:
                items, left_out = dataset["items"], dataset["left_out"]
                write(
                    f"  dataset {dataset['label']}: {items['train']} train, "
                    f"{items['validation']} validation, {items['test']} test items; left out: "
                    f"{left_out['withdrawn']['labels']} withdrawn labels, "
                    f"{left_out['tombstoned']['items']} taken down, "
                    f"{left_out['consent']['items']} for consent, "
                    f"{left_out['control']['items']} control items "
                    "(see the project's Datasets page)"
                )
            baseline = project.baseline
            if baseline.get("skipped"):
                write(f"  baseline: not trained, {baseline['skipped']}")
            elif baseline:
                write(
                    f"  baseline run {baseline['id']} ({baseline['target']} labels): test "
                    f"accuracy {baseline['accuracy']:.2f}, macro-F1 {baseline['macro_f1']:.2f}, "
                    f"trained in {baseline['seconds']:.1f} s (see the project's Training runs page)"
                )
        write(
            f"\nIngest stripped metadata from {report.images_with_metadata} images "
            f"({', '.join(f'{k}: {v}' for k, v in report.metadata_removed.items()) or 'none'}); "
            f"stored copies re-read: {report.stored_images_still_tagged} still carry "
            "EXIF/GPS/XMP."
        )
        licenses = ", ".join(f"{name} {count}" for name, count in report.licenses.items())
        write(f"Licenses: {licenses}")
        write("\nSimulated group effects (what a disagreement analysis should find):")
        for effect in SIMULATED_EFFECTS:
            write(f"  - {effect}")

    def _print_logins(self) -> None:
        rows = [("username", "password", "role", "look at")]
        rows += [
            (login.username, login.password, login.role, login.look_at) for login in demo_logins()
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        write = self.stdout.write
        write("\nLOGINS")
        for row in rows:
            cells = [cell.ljust(widths[column]) for column, cell in enumerate(row[:3])]
            write(f"  {'  '.join(cells)}  {row[3]}")
        write(
            "  The simulated crowd filled the first batch of each project to k labels; a "
            "second, unlabeled batch was imported afterwards, so any annotator login has "
            "items to label (keys 1-4 on photos, 1-3 on texts)."
        )
        write(f"\nOpen {DEMO_URL}")
