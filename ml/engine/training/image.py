"""The image baseline: a small CNN trained from scratch, or a frozen TorchScript backbone with a
linear head (transfer learning), fed by ``ImageSource`` from image files.

Invariants:

- ``SmallCNN`` maps ``(b, 3, s, s)`` float32 to ``(b, classes)`` logits for any ``s >= 8``.
  Its global pooling is a mean over the spatial axes, not ``AdaptiveAvgPool2d``, whose CUDA
  backward has no deterministic implementation (``torch.use_deterministic_algorithms``
  refuses it); max pooling in 2-D has one.
- ``BackboneClassifier`` trains only its head: every backbone parameter has
  ``requires_grad=False`` and receives no gradient, and the backbone stays in eval mode when
  the model is put in training mode, so its BatchNorm statistics and dropout never change.
  Its ``state_dict`` holds the backbone too, so saved weights are the whole model.
- ``ImageSource`` is a ``TensorSource``: it loads images lazily from their paths (RGB, EXIF
  orientation applied, as browsers show them to annotators) and yields
  ``(inputs (b, 3, s, s) float32 normalised as in ``augment.to_tensor``, targets (b, C)
  float32)`` on CPU. With ``train=True`` (and augmentation on) each image goes through
  ``augment.augment``; otherwise through ``augment.center_crop_resize``. The randomness of a
  pass comes from the ``generator`` given, and nothing else: the shuffle first, then one
  base seed, from which image ``i`` gets its own generator seeded ``base + i``. So the same
  generator state gives the same batches, and an image's augmentation does not depend on
  the batch size, the order or the loading threads.
"""

import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Self

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image, ImageOps

from ml.engine.training.augment import augment, center_crop_resize, to_tensor
from ml.engine.training.config import TrainConfig

SMALL_CNN_CHANNELS = (32, 64, 128, 128)
# Image loading threads: Pillow releases the GIL while it decodes and resizes.
DEFAULT_WORKERS = min(4, os.cpu_count() or 1)
_SEED_BOUND = 2**62


class SmallCNN(torch.nn.Module):
    """Conv-BatchNorm-ReLU blocks (2x2 max pooling after all but the last), a spatial mean,
    dropout and a linear layer."""

    def __init__(
        self,
        classes: int,
        *,
        channels: Sequence[int] = SMALL_CNN_CHANNELS,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if classes < 1 or not channels:
            raise ValueError("SmallCNN needs at least one class and one block.")
        layers: list[torch.nn.Module] = []
        width_in = 3
        for index, width in enumerate(channels):
            layers += [
                torch.nn.Conv2d(width_in, width, kernel_size=3, padding=1, bias=False),
                torch.nn.BatchNorm2d(width),
                torch.nn.ReLU(inplace=True),
            ]
            if index < len(channels) - 1:
                layers.append(torch.nn.MaxPool2d(2))
            width_in = width
        self.features = torch.nn.Sequential(*layers)
        self.dropout = torch.nn.Dropout(dropout)
        self.classifier = torch.nn.Linear(width_in, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.features(x).mean(dim=(2, 3))
        logits: torch.Tensor = self.classifier(self.dropout(pooled))
        return logits


def _freeze(module: torch.nn.Module) -> None:
    # Parameter by parameter: a ScriptModule does not support Module.requires_grad_.
    for parameter in module.parameters():
        parameter.requires_grad_(False)


def load_backbone(path: str) -> torch.jit.ScriptModule:
    """A TorchScript module from a local file, on CPU, in eval mode, every parameter frozen.

    The path comes from the operator's configuration, never from a request: a TorchScript
    archive carries code as well as weights.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"No TorchScript backbone at {path}.")
    with warnings.catch_warnings():
        # torch 2.13 deprecates TorchScript in favour of torch.export; a scripted file is
        # still the one self-contained format (code and weights) loadable without the
        # model's Python source, which is what a configured backbone needs.
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(path, map_location="cpu")
    module.eval()
    _freeze(module)
    return module


def backbone_features(backbone: torch.nn.Module, image_size: int) -> int:
    """The backbone's feature count: the size of its output for one zero image, flattened."""
    with torch.no_grad():
        output = backbone(torch.zeros(1, 3, image_size, image_size))
    if not isinstance(output, torch.Tensor) or output.ndim < 2 or output.shape[0] != 1:
        raise ValueError("A backbone must map (b, 3, s, s) images to one (b, ...) tensor.")
    return int(output[0].numel())


class BackboneClassifier(torch.nn.Module):
    """A frozen feature extractor and a trainable linear head on its flattened output."""

    def __init__(self, backbone: torch.nn.Module, classes: int, *, image_size: int) -> None:
        super().__init__()
        backbone.eval()
        _freeze(backbone)
        self.backbone = backbone
        self.features = backbone_features(backbone, image_size)
        self.head = torch.nn.Linear(self.features, classes)

    def train(self, mode: bool = True) -> Self:
        super().train(mode)
        self.backbone.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            features = self.backbone(x)
        logits: torch.Tensor = self.head(features.flatten(1))
        return logits


def image_model(classes: int, config: TrainConfig) -> torch.nn.Module:
    """``BackboneClassifier`` on ``config.backbone_path`` when one is set, else ``SmallCNN``."""
    if config.backbone_path:
        return BackboneClassifier(
            load_backbone(config.backbone_path), classes, image_size=config.image_size
        )
    return SmallCNN(classes, dropout=config.dropout)


def load_rgb(path: Path) -> Image.Image:
    """The image at ``path`` decoded, EXIF orientation applied, in RGB."""
    with Image.open(path) as opened:
        oriented = ImageOps.exif_transpose(opened)
        return oriented.convert("RGB")


class ImageSource:
    """Images at ``paths`` with target distributions ``targets`` (n, C); see the module."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        targets: npt.NDArray[np.floating] | torch.Tensor,
        *,
        size: int,
        augment: bool = True,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        self.paths = [Path(path) for path in paths]
        self.targets = torch.as_tensor(targets, dtype=torch.float32)
        if self.targets.ndim != 2 or self.targets.shape[0] != len(self.paths):
            raise ValueError("targets must be (n, C) with one row per image path.")
        if size < 1:
            raise ValueError("size must be positive.")
        self.size = size
        self.augment = augment
        self.workers = workers

    def __len__(self) -> int:
        return len(self.paths)

    def _tensor(self, index: int, base_seed: int | None) -> torch.Tensor:
        image = load_rgb(self.paths[index])
        if base_seed is None:
            return to_tensor(center_crop_resize(image, self.size))
        rng = torch.Generator().manual_seed((base_seed + index) % _SEED_BOUND)
        return to_tensor(augment(image, rng, self.size))

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None,
        train: bool,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches in order (or shuffled), augmented when ``train``; a missing generator is a
        generator seeded 0, so every pass is reproducible (and the same as every other)."""
        if batch_size < 1:
            raise ValueError("batch_size must be positive.")
        rng = generator if generator is not None else torch.Generator().manual_seed(0)
        count = len(self)
        order = torch.randperm(count, generator=rng) if shuffle else torch.arange(count)
        base_seed: int | None = None
        if train and self.augment:
            base_seed = int(torch.randint(0, _SEED_BOUND, (1,), generator=rng).item())
        indices = order.tolist()
        with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
            for start in range(0, count, batch_size):
                chunk = indices[start : start + batch_size]
                images = list(pool.map(lambda i: self._tensor(i, base_seed), chunk))
                yield torch.stack(images), self.targets[chunk]
