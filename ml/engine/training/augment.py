"""Image augmentation with Pillow and torch only (torchvision does not install beside our torch).

Every random draw comes from the ``torch.Generator`` passed in, never from a global random
state, so the same generator state gives the same image: a training run that derives its
generator from ``(seed, epoch)`` sees the same batches every time. A function draws the same
number of values whatever the outcome (a flip not taken still consumed its draw), so one
augmentation's result never shifts the draws of the next.

The training transform (``augment``) is, in this order: a random resized crop to
``size x size`` (area share in ``scale``, aspect ratio in 3/4..4/3), a horizontal flip,
colour jitter (brightness, contrast, saturation, in that fixed order) and an occasional
Gaussian blur. Evaluation uses ``center_crop_resize``: the central square, resized. Both give
RGB images of exactly ``size x size``.

``to_tensor`` turns an RGB image into float32 ``(3, H, W)``: values scaled to [0, 1], then
normalised per channel with the ImageNet mean and standard deviation (``MEAN``, ``STD``),
the statistics pretrained backbones expect, so one normalisation serves the small CNN and
transfer learning alike.
"""

import math

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# Tries at a random crop before falling back to the central square (as torchvision does).
_CROP_ATTEMPTS = 10
_ASPECT_RATIO = (3.0 / 4.0, 4.0 / 3.0)
_RESAMPLE = Image.Resampling.BILINEAR


def _uniform(rng: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(1, generator=rng).item())


def random_horizontal_flip(img: Image.Image, rng: torch.Generator, p: float = 0.5) -> Image.Image:
    """The image mirrored left to right with probability ``p`` (one draw either way)."""
    flip = _uniform(rng, 0.0, 1.0) < p
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else img


def random_resized_crop(
    img: Image.Image,
    rng: torch.Generator,
    size: int,
    scale: tuple[float, float] = (0.6, 1.0),
) -> Image.Image:
    """A random box covering ``scale`` of the area (aspect ratio 3/4..4/3), resized to
    ``size x size``; the central square when ten tries find no box that fits."""
    width, height = img.size
    area = width * height
    log_low, log_high = math.log(_ASPECT_RATIO[0]), math.log(_ASPECT_RATIO[1])
    # All tries are drawn up front, so the crop consumes the same draws whichever try fits.
    for draws in torch.rand(_CROP_ATTEMPTS, 4, generator=rng).tolist():
        target_area = area * (scale[0] + (scale[1] - scale[0]) * draws[0])
        ratio = math.exp(log_low + (log_high - log_low) * draws[1])
        crop_w = round(math.sqrt(target_area * ratio))
        crop_h = round(math.sqrt(target_area / ratio))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            left = min(int(draws[2] * (width - crop_w + 1)), width - crop_w)
            top = min(int(draws[3] * (height - crop_h + 1)), height - crop_h)
            box = (left, top, left + crop_w, top + crop_h)
            return img.resize((size, size), _RESAMPLE, box=box)
    return center_crop_resize(img, size)


def colour_jitter(
    img: Image.Image,
    rng: torch.Generator,
    brightness: float = 0.3,
    contrast: float = 0.3,
    saturation: float = 0.3,
) -> Image.Image:
    """Brightness, contrast and saturation each scaled by a factor drawn in ``[1 - s, 1 + s]``
    (``s = 0`` leaves that property alone), applied in that order."""
    out = img
    for strength, enhancer in (
        (brightness, ImageEnhance.Brightness),
        (contrast, ImageEnhance.Contrast),
        (saturation, ImageEnhance.Color),
    ):
        factor = _uniform(rng, max(0.0, 1.0 - strength), 1.0 + strength)
        if strength > 0:
            out = enhancer(out).enhance(factor)
    return out


def random_blur(
    img: Image.Image,
    rng: torch.Generator,
    p: float = 0.2,
    radius: tuple[float, float] = (0.1, 1.5),
) -> Image.Image:
    """A Gaussian blur with a radius drawn in ``radius``, with probability ``p``."""
    apply = _uniform(rng, 0.0, 1.0) < p
    chosen = _uniform(rng, radius[0], radius[1])
    return img.filter(ImageFilter.GaussianBlur(chosen)) if apply else img


def center_crop_resize(img: Image.Image, size: int) -> Image.Image:
    """The central square of side ``min(width, height)``, resized to ``size x size``."""
    width, height = img.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return img.resize((size, size), _RESAMPLE, box=(left, top, left + side, top + side))


def augment(img: Image.Image, rng: torch.Generator, size: int) -> Image.Image:
    """The training transform: crop, flip, colour jitter, blur; ``size x size`` RGB."""
    out = random_resized_crop(img.convert("RGB"), rng, size)
    out = random_horizontal_flip(out, rng)
    out = colour_jitter(out, rng)
    return random_blur(out, rng)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """float32 ``(3, H, W)``: RGB values in [0, 1] minus ``MEAN``, divided by ``STD``."""
    pixels = np.array(img.convert("RGB"), dtype=np.float32) / 255.0
    mean = np.asarray(MEAN, dtype=np.float32)
    std = np.asarray(STD, dtype=np.float32)
    normalised = (pixels - mean) / std
    return torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)))
