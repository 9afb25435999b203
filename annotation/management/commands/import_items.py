"""``manage.py import_items``: an operator's synchronous import, with every error listed.

Every refusal, a media storage fault included (``StorageUnavailable``), ends in one
``CommandError`` line after the bad rows it lists, never a traceback.
"""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from annotation.ingest import ImportSource, describe_error, items_import, read_folder, read_upload
from annotation.models import Project
from core.errors import ApplicationError
from core.models import User


def _read_file(path: Path) -> ImportSource:
    if not path.is_file():
        raise CommandError(f"{path} is not a file.")
    if path.stat().st_size > settings.CHORUS_MAX_UPLOAD_BYTES:
        raise CommandError(f"{path} is over {settings.CHORUS_MAX_UPLOAD_BYTES:,} bytes.")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CommandError(f"{path} cannot be read: {error.strerror}.") from error
    return read_upload(data=data, filename=path.name)


class Command(BaseCommand):
    help = (
        "Import items into a project from a .csv/.jsonl manifest, a .zip of images with "
        "manifest.csv/manifest.jsonl at its root, or a folder laid out the same way. "
        "All rows or none are imported; every bad row is listed with its line number."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--project", type=int, required=True, help="Project id.")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--file", type=Path, help="A .csv, .jsonl or .zip file.")
        # The operator names the folder, so any folder is allowed; the manifest's paths
        # must still stay inside it.
        source.add_argument("--folder", type=Path, help="A folder with images and a manifest.")
        parser.add_argument(
            "--as",
            dest="username",
            default="",
            help="Username recorded as the importer (default: the project's owner).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.select_related("owner").filter(pk=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with id {options['project']}.")
        actor = self._actor(project, options["username"])
        try:
            if options["file"] is not None:
                source = _read_file(options["file"])
            else:
                folder = Path(options["folder"]).resolve()
                source = read_folder(path=folder, root=folder)
            items = items_import(project=project, actor=actor, source=source)
        except ApplicationError as error:
            for problem in error.extra.get("errors", []):
                self.stderr.write(describe_error(problem))
            raise CommandError(f"Import failed [{error.code}]: {error.message}") from error
        self.stdout.write(
            self.style.SUCCESS(f"Imported {len(items)} items into project {project.pk}.")
        )

    def _actor(self, project: Project, username: str) -> User:
        if not username:
            return project.owner
        actor = User.objects.filter(username=username).first()
        if actor is None:
            raise CommandError(f"No user named {username!r}.")
        return actor
