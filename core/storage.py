"""Media storage on local disk where a file appears at its name only when complete.

Item images are stored under content-addressed names (``annotation.models.item_upload_path``),
so a truncated file at such a name would pass for the real image. ``AtomicFileSystemStorage``
writes every file to a hidden ``.partial-<random>`` file in the target folder, fsyncs it,
and only then links it to its name; on any error the partial file is removed. A full disk,
a read-only mount or a killed process can leave at most a ``.partial-*`` file (never
referenced by any row, never produced by ``get_available_name``), not a short file at a
real name.

Write faults are raised as ``core.errors.StorageUnavailable`` (HTTP 503 with a stable
code), the path logged here and never shown to the client. Only ``_save`` converts:
``delete``, ``open`` and the rest keep Django's ``OSError``s, which their callers handle
(e.g. ``FileNotFoundError`` for a missing image).
"""

import logging
import os
import secrets

from django.core.files import File
from django.core.files.storage import FileSystemStorage

# Django's own helper for directory_permissions_mode (applies it to every new folder).
from django.utils._os import safe_makedirs  # type: ignore[attr-defined]  # missing from django-stubs

from core.errors import storage_error

logger = logging.getLogger(__name__)

PARTIAL_PREFIX = ".partial-"
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _remove_partial(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        logger.warning("could not remove the partial file %s", path, exc_info=True)


def _sync_directory(directory: str) -> None:
    # Makes the new name durable before the caller commits a row that refers to it. Best
    # effort: some file systems refuse fsync on a folder, and the file's content is already
    # synced, so a crash can lose the name but never leave it pointing at a partial file.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        logger.debug("could not open %s to sync it", directory, exc_info=True)
        return
    try:
        os.fsync(fd)
    except OSError:
        logger.debug("could not sync %s", directory, exc_info=True)
    finally:
        os.close(fd)


class AtomicFileSystemStorage(FileSystemStorage):
    """``FileSystemStorage`` whose saves are all-or-nothing (see the module docstring).

    Names are chosen as Django's: a name already taken, even by a save racing this one,
    gets a random suffix (``allow_overwrite=True`` replaces the file instead, atomically).
    """

    def _save(self, name: str, content: File) -> str:
        full_path = self.path(name)
        try:
            partial = self._write_partial(os.path.dirname(full_path), content)
            try:
                full_path = self._publish(partial, name)
            finally:
                # After a link the partial name is a second name for the stored file; after
                # an error it is the only one. os.replace has already consumed it.
                _remove_partial(partial)
        except OSError as error:
            logger.error("media storage could not write %s: %s", full_path, error)
            raise storage_error(error) from error
        return os.path.relpath(full_path, self.location).replace("\\", "/")

    def _make_directory(self, directory: str) -> None:
        try:
            if self.directory_permissions_mode is not None:
                safe_makedirs(directory, self.directory_permissions_mode, exist_ok=True)
            else:
                os.makedirs(directory, exist_ok=True)
        except FileExistsError as error:
            raise FileExistsError(f"{directory} exists and is not a directory.") from error

    def _write_partial(self, directory: str, content: File) -> str:
        """Write ``content`` to a new hidden file in ``directory``, synced; return its path."""
        self._make_directory(directory)
        partial = os.path.join(directory, PARTIAL_PREFIX + secrets.token_hex(8))
        # 0o666 less the umask, as Django's storage creates files.
        fd = os.open(partial, _OPEN_FLAGS, 0o666)
        try:
            try:
                for chunk in content.chunks():
                    _write_all(fd, chunk.encode() if isinstance(chunk, str) else chunk)
                os.fsync(fd)
            finally:
                os.close(fd)
            if self.file_permissions_mode is not None:
                os.chmod(partial, self.file_permissions_mode)
            self._ensure_location_group_id(partial)  # type: ignore[attr-defined]  # private, not in django-stubs
        except BaseException:
            _remove_partial(partial)
            raise
        return partial

    def _publish(self, partial: str, name: str) -> str:
        """Give the complete ``partial`` file its name (or a free one); return its path."""
        full_path = self.path(name)
        while True:
            try:
                if self._allow_overwrite:  # type: ignore[attr-defined]  # private, not in django-stubs
                    os.replace(partial, full_path)
                else:
                    # Unlike a rename, a link refuses an existing name, so a racing save
                    # of the same name is never overwritten.
                    os.link(partial, full_path)
            except FileExistsError:
                name = self.get_available_name(name)
                full_path = self.path(name)
            else:
                break
        _sync_directory(os.path.dirname(full_path))
        return full_path
