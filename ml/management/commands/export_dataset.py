"""``manage.py export_dataset``: build a dataset version now and write its bundle to DIR."""

import json
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from core.errors import ApplicationError
from core.models import User
from ml.build.archive import bundle_member_names, safe_member
from ml.services import dataset_version_build_now


class Command(BaseCommand):
    help = (
        "Build a dataset version of a project synchronously (the same build a worker runs) "
        "and write its bundle directory to --out. The recipe is a JSON file; every field is "
        "optional (see the README's recipe format)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--project", type=int, required=True, help="Project id.")
        parser.add_argument("--recipe", type=Path, help="A recipe JSON file (default: {}).")
        parser.add_argument("--out", type=Path, required=True, help="Directory to write into.")
        parser.add_argument(
            "--as",
            dest="username",
            default="",
            help="Username recorded as the builder (default: the project's owner).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.select_related("owner").filter(pk=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with id {options['project']}.")
        actor = project.owner
        if options["username"]:
            found = User.objects.filter(username=options["username"]).first()
            if found is None:
                raise CommandError(f"No user named {options['username']!r}.")
            actor = found
        recipe: object = {}
        if options["recipe"] is not None:
            try:
                recipe = json.loads(Path(options["recipe"]).read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise CommandError(
                    f"{options['recipe']} is not a readable JSON file: {error}"
                ) from error
        out: Path = options["out"]
        if out.exists() and any(out.iterdir()):
            raise CommandError(f"{out} is not empty; give a new or empty directory.")
        try:
            version = dataset_version_build_now(project=project, actor=actor, recipe=recipe)
        except ApplicationError as error:
            raise CommandError(f"Build failed [{error.code}]: {error.message}") from error
        if version.status != version.Status.DONE:
            raise CommandError(f"Build {version.pk} failed: {version.error}")
        for name in bundle_member_names(version):
            target = out / safe_member(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            with (
                default_storage.open(f"{version.storage_prefix}/{name}", "rb") as source,
                target.open("wb") as sink,
            ):
                while chunk := source.read(1024 * 1024):
                    sink.write(chunk)
        counts = version.counts.get("items", {})
        self.stdout.write(
            self.style.SUCCESS(
                f"Built {version.label} of project {project.pk} (id {version.pk}): "
                f"{counts.get('train', 0)} train, {counts.get('validation', 0)} validation, "
                f"{counts.get('test', 0)} test items; bundle in {out}."
            )
        )
