"""Files of the ml app in Django's ``STORAGES`` (local disk by default, a bucket by settings),
kept under prefixes: one per build attempt of a dataset version, one per attempt of a
training run.

An attempt writes under a prefix of its own (the job's id and its lease owner), so two
attempts never write the same name and a published prefix is never written again; the
row that publishes names the prefix. Whatever no row names, once an hour old, is an
abandoned attempt (its worker died between upload and publication) and
``orphans_sweep`` deletes it.
"""

import logging
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from django.core.files.base import File
from django.core.files.storage import default_storage
from django.utils import timezone

logger = logging.getLogger(__name__)

# Files of an abandoned attempt are deleted once this old.
ORPHAN_AGE_S = 3600


def prefix_upload(root: Path, prefix: str) -> None:
    """Copy every file under the local directory ``root`` to ``prefix/<relative path>``."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = f"{prefix}/{path.relative_to(root).as_posix()}"
        with path.open("rb") as handle:
            stored = default_storage.save(name, File(handle))
        if stored != name:
            raise RuntimeError(f"storage renamed {name} to {stored}")


def prefix_files(prefix: str) -> list[str]:
    """Every file name under ``prefix`` (none when it does not exist)."""
    try:
        directories, files = default_storage.listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return []
    names = [f"{prefix}/{name}" for name in files]
    for directory in directories:
        names.extend(prefix_files(f"{prefix}/{directory}"))
    return names


def prefix_delete(prefix: str) -> None:
    """Delete every file under ``prefix`` (logging, not raising, what cannot be deleted)."""
    if not prefix:
        return
    for name in prefix_files(prefix):
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete %s", name, exc_info=True)


def prefix_download(prefix: str, root: Path, *, only: Iterable[str] | None = None) -> None:
    """Copy the files under ``prefix`` (or the relative names in ``only``) into ``root``."""
    names = prefix_files(prefix) if only is None else [f"{prefix}/{relative}" for relative in only]
    for name in names:
        target = root / name.removeprefix(f"{prefix}/")
        target.parent.mkdir(parents=True, exist_ok=True)
        with default_storage.open(name, "rb") as source, target.open("wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)


def orphans_sweep(root: str, *, keep: set[str]) -> int:
    """Delete the attempt prefixes ``root/<group>/<attempt>`` that are not in ``keep`` and
    whose newest file is over ``ORPHAN_AGE_S`` old; returns how many were deleted."""
    cutoff = timezone.now() - timedelta(seconds=ORPHAN_AGE_S)
    deleted = 0
    try:
        groups, _files = default_storage.listdir(root)
    except (FileNotFoundError, NotImplementedError):
        return 0
    for group in groups:
        attempts, _ = default_storage.listdir(f"{root}/{group}")
        for attempt in attempts:
            prefix = f"{root}/{group}/{attempt}"
            if prefix in keep:
                continue
            names = prefix_files(prefix)
            try:
                newest = max((default_storage.get_modified_time(n) for n in names), default=None)
            except (OSError, NotImplementedError):
                continue
            if newest is not None and newest > cutoff:
                continue
            prefix_delete(prefix)
            deleted += 1
    return deleted
