"""``manage.py train_baseline``: train a baseline on a dataset version now, in this process,
through the same job a GPU worker runs, and print the run id and its artefact directory."""

import json
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ApplicationError
from core.models import User
from ml.models import DatasetVersion, TrainingRun
from ml.services import training_run_train_now


class Command(BaseCommand):
    help = (
        "Train a baseline classifier on a dataset version synchronously (the same code path "
        "as the gpu queue's task) and print the run id and its artefact directory."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # ``--version`` names the dataset version here, not Django's version: resolve the
        # clash in favour of this command's option.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--version", type=int, required=True, help="Dataset version id.")
        parser.add_argument(
            "--target", choices=("majority", "dawid-skene", "soft"), default="majority"
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
        parser.add_argument(
            "--group-by",
            default="",
            help="One item metadata key, or two separated by a comma (adds their intersection).",
        )
        parser.add_argument(
            "--annotator-questions",
            default="",
            help="Survey questions (comma-separated) whose annotator groups to compare.",
        )
        parser.add_argument(
            "--encoder", default="", help="A configured text encoder or image backbone key."
        )
        parser.add_argument(
            "--params", type=Path, help="A JSON file of hyperparameters (see the README)."
        )
        parser.add_argument(
            "--as",
            dest="username",
            default="",
            help="Username recorded as the trainer (default: the project's owner).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        version = (
            DatasetVersion.objects.select_related("project", "project__owner")
            .filter(pk=options["version"])
            .first()
        )
        if version is None:
            raise CommandError(f"No dataset version with id {options['version']}.")
        actor = version.project.owner
        if options["username"]:
            found = User.objects.filter(username=options["username"]).first()
            if found is None:
                raise CommandError(f"No user named {options['username']!r}.")
            actor = found
        request: dict[str, Any] = {
            "target": options["target"].replace("-", "_"),
            "seed": options["seed"],
            "device": options["device"],
            "group_by": [k for k in options["group_by"].split(",") if k],
            "annotator_questions": [q for q in options["annotator_questions"].split(",") if q],
        }
        if options["encoder"]:
            request["encoder"] = options["encoder"]
        if options["params"] is not None:
            try:
                request["params"] = json.loads(options["params"].read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise CommandError(
                    f"{options['params']} is not a readable JSON file: {error}"
                ) from error
        try:
            run = training_run_train_now(version=version, actor=actor, request=request)
        except ApplicationError as error:
            detail = "; ".join(
                f"{name}: {problems[0]}"
                for name, problems in (error.extra.get("fields") or {}).items()
            )
            raise CommandError(
                f"Training refused [{error.code}]: {detail or error.message}"
            ) from error
        if run.status != TrainingRun.Status.DONE:
            raise CommandError(f"Run {run.pk} {run.status}: {run.error}")
        test = run.metrics.get("test", {})
        self.stdout.write(f"run {run.pk}")
        self.stdout.write(f"artefacts {_directory(run.storage_prefix)}")
        self.stdout.write(
            f"test accuracy {test.get('accuracy'):.3f}, macro-F1 {test.get('macro_f1'):.3f} "
            f"on {run.device} in {run.wall_seconds:.1f} s"
        )


def _directory(prefix: str) -> str:
    """The local directory of the artefacts, or their storage prefix when the storage
    has no local paths (a bucket)."""
    try:
        return str(default_storage.path(prefix))
    except NotImplementedError:
        return prefix
