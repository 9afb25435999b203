"""Media storage faults, injected at the OS boundary for one folder.

Tests run as root, where a read-only ``chmod`` does not stop writes, and a full disk cannot
be made without privileges; so ``os.mkdir``, ``os.open`` and ``os.write`` are wrapped for
paths under one folder and behave as a read-only mount (``EROFS`` on creating anything) or
a disk with ``free`` bytes left (a short write, then ``ENOSPC``). Everything outside the
folder goes to the real calls.
"""

import errno
import os
from pathlib import Path
from typing import Any

import pytest

_real_mkdir = os.mkdir
_real_open = os.open
_real_write = os.write
_real_close = os.close
_real_fdopen = os.fdopen


class StorageFaults:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
        self._root = Path(os.path.abspath(root))
        self._read_only_errno: int | None = None
        self._free: int | None = None
        self._full_errno = errno.ENOSPC
        self._watched: set[int] = set()
        monkeypatch.setattr(os, "mkdir", self._mkdir)
        monkeypatch.setattr(os, "open", self._open)
        monkeypatch.setattr(os, "write", self._write)
        monkeypatch.setattr(os, "close", self._close)
        # Django's own FileSystemStorage writes through a file object, not os.write.
        monkeypatch.setattr(os, "fdopen", self._fdopen)

    def read_only(self, code: int = errno.EROFS) -> None:
        """Creating a folder or a file under the root fails with ``code``."""
        self._read_only_errno = code

    def disk_full_after(self, free: int, code: int = errno.ENOSPC) -> None:
        """Writes to files under the root take ``free`` bytes in all, then fail."""
        self._free = free
        self._full_errno = code

    def _inside(self, path: "str | os.PathLike[str]") -> bool:
        absolute = Path(os.path.abspath(path))
        return absolute == self._root or absolute.is_relative_to(self._root)

    def _refuse(self, code: int, path: "str | os.PathLike[str]") -> OSError:
        return OSError(code, os.strerror(code), os.fspath(path))

    def _mkdir(self, path: str, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        if self._read_only_errno is not None and self._inside(path) and not os.path.exists(path):
            raise self._refuse(self._read_only_errno, path)
        _real_mkdir(path, mode, dir_fd=dir_fd)

    def _open(self, path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        inside = self._inside(path)
        if inside and self._read_only_errno is not None and flags & os.O_CREAT:
            raise self._refuse(self._read_only_errno, path)
        fd = _real_open(path, flags, mode, dir_fd=dir_fd)
        if inside and flags & (os.O_WRONLY | os.O_RDWR):
            self._watched.add(fd)
        return fd

    def _allowance(self, fd: int, size: int) -> int:
        """How much of a write of ``size`` bytes to ``fd`` fits; raises when nothing does."""
        if fd not in self._watched or self._free is None:
            return size
        if self._free == 0 and size:
            raise OSError(self._full_errno, os.strerror(self._full_errno))
        allowed = min(size, self._free)
        self._free -= allowed
        return allowed

    def _write(self, fd: int, data: bytes | memoryview) -> int:
        # A short write, as a filling disk gives, then the error: the writer must loop.
        return _real_write(fd, memoryview(data)[: self._allowance(fd, len(data))])

    def _fdopen(self, fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = _real_fdopen(fd, mode, *args, **kwargs)
        return _FullDiskFile(handle, fd, self) if fd in self._watched else handle

    def _close(self, fd: int) -> None:
        self._watched.discard(fd)
        _real_close(fd)


class _FullDiskFile:
    """A file object over a watched descriptor: a buffered write that does not fit writes
    what fits, then raises, as a real full disk makes it."""

    def __init__(self, handle: Any, fd: int, faults: StorageFaults) -> None:
        self._handle = handle
        self._fd = fd
        self._faults = faults

    def write(self, data: Any) -> int:
        allowed = self._faults._allowance(self._fd, len(data))
        self._handle.write(data[:allowed])
        if allowed < len(data):
            self._handle.flush()
            raise OSError(self._faults._full_errno, os.strerror(self._faults._full_errno))
        return allowed

    def close(self) -> None:
        self._faults._watched.discard(self._fd)
        self._handle.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


def files_under(root: Path) -> list[Path]:
    """Every file under ``root``, hidden partial files included."""
    return sorted(path for path in root.rglob("*") if path.is_file())
