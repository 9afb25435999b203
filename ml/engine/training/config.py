"""Hyperparameters of a baseline run, validated when built, and the device they run on.

A ``TrainConfig`` is immutable and valid once constructed (``ValueError`` otherwise), so
everything downstream may trust it. ``resolve_device`` turns the requested device into the
one used: ``"auto"`` means CUDA when torch sees a GPU; asking for CUDA without one is an
error, never a silent fallback to the CPU.
"""

from dataclasses import dataclass
from typing import Literal

DEVICES = ("auto", "cpu", "cuda")
HEADS = ("linear", "mlp")
# The smallest image side the small CNN's pooling stages still reduce sensibly.
MIN_IMAGE_SIZE = 16


def _integer_at_least(value: object, minimum: int) -> bool:
    # Values may come from JSON or a form: a float or a bool is not an integer here.
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


@dataclass(frozen=True)
class TrainConfig:
    """``seed`` drives initialisation, shuffling and augmentation; ``patience`` epochs
    without a lower validation loss stop the run; ``head``, ``hidden`` and ``dropout`` shape
    the text head; ``image_size``, ``augment`` and ``backbone_path`` (a local TorchScript
    file for transfer learning) the image model."""

    seed: int = 0
    device: str = "auto"
    max_epochs: int = 50
    patience: int = 5
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-2
    head: Literal["linear", "mlp"] = "linear"
    hidden: int = 256
    dropout: float = 0.1
    image_size: int = 64
    augment: bool = True
    backbone_path: str | None = None

    def __post_init__(self) -> None:
        positive_ints = {
            "max_epochs": self.max_epochs,
            "patience": self.patience,
            "batch_size": self.batch_size,
            "hidden": self.hidden,
        }
        for name, value in positive_ints.items():
            if not _integer_at_least(value, 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if not _integer_at_least(self.seed, 0):
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}.")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}.")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be non-negative, got {self.weight_decay!r}.")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}.")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}.")
        if not _integer_at_least(self.image_size, MIN_IMAGE_SIZE):
            raise ValueError(
                f"image_size must be an integer of at least {MIN_IMAGE_SIZE}, "
                f"got {self.image_size!r}."
            )
        if self.backbone_path is not None and not self.backbone_path:
            raise ValueError("backbone_path must be a file path or None, not empty.")


def resolve_device(requested: str) -> str:
    """``"cpu"`` or ``"cuda"``: ``"auto"`` is CUDA when available; ``"cuda"`` without a
    GPU raises ``ValueError``."""
    if requested not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {requested!r}.")
    # Imported here: the web process reads TrainConfig's defaults (the run form) without
    # loading torch.
    import torch

    available = torch.cuda.is_available()
    if requested == "cuda" and not available:
        raise ValueError("CUDA was requested but torch sees no GPU on this machine.")
    if requested == "auto":
        return "cuda" if available else "cpu"
    return requested
