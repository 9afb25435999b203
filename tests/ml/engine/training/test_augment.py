"""Augmentations: the same generator seed gives the same image, sizes hold, a flip mirrors,
and the tensor normalisation is the documented one."""

import numpy as np
import pytest
import torch
from PIL import Image

from ml.engine.training.augment import (
    MEAN,
    STD,
    augment,
    center_crop_resize,
    colour_jitter,
    random_blur,
    random_horizontal_flip,
    random_resized_crop,
    to_tensor,
)


def _image(width: int = 40, height: int = 30) -> Image.Image:
    """A picture with no symmetry: a horizontal and a vertical ramp and a noisy blue."""
    rng = np.random.default_rng(0)
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    pixels[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    pixels[..., 2] = rng.integers(0, 256, size=(height, width), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def _rng(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_augment_same_seed_same_image_other_seed_other_image():
    image = _image()
    first = np.asarray(augment(image, _rng(7), 24))
    again = np.asarray(augment(image, _rng(7), 24))
    assert np.array_equal(first, again)
    others = [np.asarray(augment(image, _rng(seed), 24)) for seed in (8, 9, 10)]
    assert all(not np.array_equal(first, other) for other in others)


def test_augment_consumes_a_fixed_number_of_draws():
    # A wide image and a thin one (whose crops mostly do not fit) leave the generator in
    # the same state, so one image's augmentation never shifts the draws of the next.
    wide, thin = _rng(3), _rng(3)
    augment(_image(), wide, 16)
    augment(_image(5, 200), thin, 16)
    assert torch.equal(torch.rand(3, generator=wide), torch.rand(3, generator=thin))


@pytest.mark.parametrize("size", [8, 24, 64])
def test_augment_and_center_crop_give_size_by_size_rgb(size):
    for image in (_image(), _image(30, 40), _image(5, 200), _image().convert("L")):
        augmented = augment(image, _rng(0), size)
        assert augmented.size == (size, size) and augmented.mode == "RGB"
        assert center_crop_resize(image, size).size == (size, size)
        assert random_resized_crop(image, _rng(1), size).size == (size, size)


def test_center_crop_resize_keeps_the_central_square():
    image = _image(40, 30)
    assert np.array_equal(np.asarray(center_crop_resize(image, 30)), np.asarray(image)[:, 5:35])


def test_random_horizontal_flip_mirrors_or_leaves_alone():
    image = _image()
    flipped = np.asarray(random_horizontal_flip(image, _rng(0), p=1.0))
    assert np.array_equal(flipped, np.asarray(image)[:, ::-1])
    kept = np.asarray(random_horizontal_flip(image, _rng(0), p=0.0))
    assert np.array_equal(kept, np.asarray(image))


def test_random_horizontal_flip_half_the_time():
    rng = _rng(0)
    image = _image()
    flips = sum(random_horizontal_flip(image, rng) is not image for _ in range(400))
    assert 150 < flips < 250


def test_colour_jitter_zero_strength_is_identity_and_strength_changes_pixels():
    image = _image()
    same = colour_jitter(image, _rng(0), brightness=0.0, contrast=0.0, saturation=0.0)
    assert np.array_equal(np.asarray(same), np.asarray(image))
    changed = colour_jitter(image, _rng(0), brightness=0.5, contrast=0.0, saturation=0.0)
    assert not np.array_equal(np.asarray(changed), np.asarray(image))


def test_random_blur_smooths_when_applied():
    image = _image()
    assert random_blur(image, _rng(0), p=0.0) is image
    blurred = np.asarray(random_blur(image, _rng(0), p=1.0, radius=(1.5, 1.5)), dtype=float)
    noise = np.asarray(image, dtype=float)[..., 2]
    # Neighbouring blue values (pure noise) get closer once blurred.
    assert (
        np.abs(np.diff(blurred[..., 2], axis=1)).mean() < np.abs(np.diff(noise, axis=1)).mean() / 2
    )


def test_to_tensor_is_chw_float32_normalised_with_imagenet_statistics():
    image = Image.new("RGB", (5, 3), (255, 0, 128))
    tensor = to_tensor(image)
    assert tensor.shape == (3, 3, 5) and tensor.dtype == torch.float32
    expected = [(1.0 - MEAN[0]) / STD[0], (0.0 - MEAN[1]) / STD[1], (128 / 255 - MEAN[2]) / STD[2]]
    for channel, value in enumerate(expected):
        assert torch.allclose(tensor[channel], torch.full((3, 5), value), atol=1e-6)
