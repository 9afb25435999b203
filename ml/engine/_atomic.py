"""Files that appear whole or not at all.

``write_bytes_atomically`` writes to a temporary file in the target's directory (named
``.<target>.<random>.tmp``, so directory listings can skip it), flushes it to disk and
moves it over the target with ``os.replace``: a process killed at any point leaves either
the old file, or the new one, complete, never a part. Concurrent writers of the same target
each land whole; the last rename wins.
"""

import os
import tempfile
from pathlib import Path


def write_bytes_atomically(path: Path, payload: bytes) -> None:
    """Replace ``path`` by a file holding ``payload`` (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
