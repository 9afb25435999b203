"""Media storage: a file appears at its name only when complete; write faults are
``StorageUnavailable`` with a stable code and no path; a name taken meanwhile is kept."""

import errno
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from core.errors import StorageUnavailable, storage_error
from core.storage import PARTIAL_PREFIX, AtomicFileSystemStorage
from tests.core.storage_faults import StorageFaults, files_under

CONTENT = bytes(range(256)) * 400  # 100 KiB: several chunks of 64 KiB


@pytest.fixture
def storage(tmp_path: Path) -> AtomicFileSystemStorage:
    return AtomicFileSystemStorage(location=tmp_path / "media")


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> StorageFaults:
    return StorageFaults(monkeypatch, tmp_path / "media")


class WatchedContent(ContentFile):
    """Content that records, before each chunk, whether ``final`` already exists."""

    def __init__(self, data: bytes, final: Path) -> None:
        super().__init__(data)
        self.final = final
        self.final_seen: list[bool] = []

    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        for chunk in super().chunks(chunk_size=16 * 1024):
            self.final_seen.append(self.final.exists())
            yield chunk


class InterruptedContent(ContentFile):
    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        yield b"first half"
        raise KeyboardInterrupt


def test_default_storage_is_the_atomic_storage() -> None:
    assert isinstance(storages["default"], AtomicFileSystemStorage)


def test_atomic_storage_save_writes_the_whole_file_under_its_name(
    storage: AtomicFileSystemStorage, tmp_path: Path
) -> None:
    name = storage.save("items/1/ab/abc.png", ContentFile(CONTENT))

    assert name == "items/1/ab/abc.png"
    assert (tmp_path / "media" / name).read_bytes() == CONTENT
    assert files_under(tmp_path / "media") == [tmp_path / "media" / name]


def test_atomic_storage_text_content_stored_as_utf8(
    storage: AtomicFileSystemStorage, tmp_path: Path
) -> None:
    name = storage.save("notes/a.txt", ContentFile("privé"))

    assert (tmp_path / "media" / name).read_bytes() == "privé".encode()


def test_atomic_storage_final_name_absent_until_the_file_is_complete(
    storage: AtomicFileSystemStorage, tmp_path: Path
) -> None:
    final = tmp_path / "media" / "items" / "1" / "ab" / "abc.png"
    content = WatchedContent(CONTENT, final)

    storage.save("items/1/ab/abc.png", content)

    assert len(content.final_seen) > 1
    assert not any(content.final_seen)
    assert final.read_bytes() == CONTENT


def test_atomic_storage_disk_full_mid_write_leaves_no_file(
    storage: AtomicFileSystemStorage, faults: StorageFaults, tmp_path: Path
) -> None:
    faults.disk_full_after(len(CONTENT) // 3)

    with pytest.raises(StorageUnavailable) as excinfo:
        storage.save("items/1/ab/abc.png", ContentFile(CONTENT))

    assert excinfo.value.code == "storage_full"
    assert excinfo.value.status_code == 503
    assert files_under(tmp_path / "media") == []
    assert not storage.exists("items/1/ab/abc.png")


def test_atomic_storage_read_only_raises_read_only_path_only_in_the_log(
    storage: AtomicFileSystemStorage,
    faults: StorageFaults,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    faults.read_only()

    with caplog.at_level(logging.ERROR, logger="core.storage"):
        with pytest.raises(StorageUnavailable) as excinfo:
            storage.save("items/1/ab/abc.png", ContentFile(CONTENT))

    assert excinfo.value.code == "storage_read_only"
    assert "read-only" in excinfo.value.message
    assert str(tmp_path) not in excinfo.value.message
    assert excinfo.value.extra == {}
    assert str(tmp_path / "media") in caplog.text
    assert not (tmp_path / "media").exists()


def test_atomic_storage_interrupted_write_removes_partial_and_reraises(
    storage: AtomicFileSystemStorage, tmp_path: Path
) -> None:
    with pytest.raises(KeyboardInterrupt):
        storage.save("items/1/ab/abc.png", InterruptedContent(b""))

    assert files_under(tmp_path / "media") == []


def test_atomic_storage_name_taken_before_publish_gets_a_new_name_old_file_kept(
    storage: AtomicFileSystemStorage, tmp_path: Path
) -> None:
    storage.save("a.bin", ContentFile(b"first"))

    # _save directly: the name was free when get_available_name ran, then another save
    # took it, as in a race.
    name = storage._save("a.bin", ContentFile(b"second"))

    assert name != "a.bin" and name.startswith("a_") and name.endswith(".bin")
    assert (tmp_path / "media" / "a.bin").read_bytes() == b"first"
    assert (tmp_path / "media" / name).read_bytes() == b"second"
    assert not any(path.name.startswith(PARTIAL_PREFIX) for path in files_under(tmp_path))


def test_atomic_storage_concurrent_saves_of_one_name_get_distinct_complete_files(
    storage: AtomicFileSystemStorage, tmp_path: Path
) -> None:
    count = 8
    barrier = threading.Barrier(count)
    names: dict[int, str] = {}
    errors: list[BaseException] = []

    def save(index: int) -> None:
        try:
            barrier.wait()
            names[index] = storage.save("same.bin", ContentFile(bytes([index]) * 70_000))
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=save, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(set(names.values())) == count
    for index, name in names.items():
        assert (tmp_path / "media" / name).read_bytes() == bytes([index]) * 70_000
    assert len(files_under(tmp_path / "media")) == count


def test_atomic_storage_allow_overwrite_replaces_the_file_under_the_same_name(
    tmp_path: Path,
) -> None:
    storage = AtomicFileSystemStorage(location=tmp_path / "media", allow_overwrite=True)
    storage.save("a.bin", ContentFile(b"first"))

    name = storage.save("a.bin", ContentFile(b"second"))

    assert name == "a.bin"
    assert files_under(tmp_path / "media") == [tmp_path / "media" / "a.bin"]
    assert (tmp_path / "media" / "a.bin").read_bytes() == b"second"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.EROFS, "storage_read_only"),
        (errno.EACCES, "storage_read_only"),
        (errno.EPERM, "storage_read_only"),
        (errno.ENOSPC, "storage_full"),
        (errno.EDQUOT, "storage_full"),
        (errno.EIO, "storage_unavailable"),
        (None, "storage_unavailable"),
    ],
)
def test_storage_error_errno_maps_to_stable_code_and_503(code: int | None, expected: str) -> None:
    os_error = OSError(code, "boom", "/srv/media/items/1/x.png") if code else OSError("boom")

    error = storage_error(os_error)

    assert error.code == expected
    assert error.status_code == 503
    assert "operator" in error.message
    assert "/srv/media" not in error.message
