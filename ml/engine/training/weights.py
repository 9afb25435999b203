"""Model weights on disk: written atomically with their sha256, read only after checking it.

Invariants:

- ``save_weights`` writes a ``torch.save`` archive of CPU tensors atomically (temporary
  file, fsync, ``os.replace``): a killed process leaves either no file or the whole file.
  The archive is serialised in memory first, so its bytes depend on the tensors only
  (``torch.save`` names the archive after the file it writes to), and equal weights give
  equal hashes.
- ``load_weights`` reads the file once, checks those bytes' sha256 against the recorded
  one *before* unpickling anything, and unpickles the same bytes (no window between check
  and load) with ``torch.load(weights_only=True)``. A mismatch, a payload that
  ``weights_only`` refuses, or anything that is not a ``{name: tensor}`` mapping raises
  ``WeightsTampered``.
"""

import hashlib
import hmac
import io
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from ml.engine._atomic import write_bytes_atomically

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class WeightsTampered(Exception):
    """A weights file does not match its recorded sha256, or is not a plain state dict."""


def _named_tensor(name: object, value: object) -> bool:
    return isinstance(name, str) and isinstance(value, torch.Tensor)


def save_weights(state_dict: Mapping[str, torch.Tensor], path: Path) -> str:
    """Write ``state_dict`` (names to tensors, moved to the CPU) to ``path`` atomically;
    returns the file's sha256 hex digest."""
    tensors: dict[str, torch.Tensor] = {}
    for name, value in state_dict.items():
        if not _named_tensor(name, value):
            raise ValueError(f"A state dict maps names to tensors; {name!r} is not one.")
        tensors[name] = value.detach().to("cpu").contiguous().clone()
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    payload = buffer.getvalue()
    write_bytes_atomically(Path(path), payload)
    return hashlib.sha256(payload).hexdigest()


def load_weights(path: Path, *, sha256: str) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` on the CPU, if its sha256 is ``sha256`` (hex)."""
    expected = sha256.lower()
    if not _SHA256_HEX.fullmatch(expected):
        raise ValueError(f"{sha256!r} is not a sha256 hex digest.")
    payload = Path(path).read_bytes()
    actual = hashlib.sha256(payload).hexdigest()
    if not hmac.compare_digest(actual, expected):
        raise WeightsTampered(
            f"{path}: sha256 is {actual}, the run recorded {expected}; refusing to load it."
        )
    try:
        loaded = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise WeightsTampered(f"{path}: not a plain weights file ({error}).") from error
    if not isinstance(loaded, dict) or not all(
        _named_tensor(name, value) for name, value in loaded.items()
    ):
        raise WeightsTampered(f"{path}: the payload is not a mapping of names to tensors.")
    return loaded
