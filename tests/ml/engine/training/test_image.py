"""The image baseline: SmallCNN shapes, ImageSource batches (lazy, augmented only in
training, reproducible from the generator), the frozen TorchScript backbone, and a tiny
training through ``loop.fit``."""

import numpy as np
import pytest
import torch
from PIL import Image

from ml.engine.training.augment import center_crop_resize, to_tensor
from ml.engine.training.config import TrainConfig
from ml.engine.training.image import (
    BackboneClassifier,
    ImageSource,
    SmallCNN,
    image_model,
    load_backbone,
    load_rgb,
)
from ml.engine.training.loop import fit, predict_proba

SIZE = 16
# torch 2.13 deprecates TorchScript; the tests script a backbone on purpose.
scripting = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


def _write_images(folder, count=8):
    """Red-ish images for class 0, blue-ish for class 1, each with a little noise."""
    rng = np.random.default_rng(0)
    paths, targets = [], []
    for index in range(count):
        label = index % 2
        pixels = rng.integers(0, 60, size=(20 + index, 24, 3), dtype=np.uint8)
        pixels[..., 0 if label == 0 else 2] += 180
        path = folder / f"image-{index}.png"
        Image.fromarray(pixels, "RGB").save(path)
        paths.append(str(path))
        targets.append([1.0, 0.0] if label == 0 else [0.0, 1.0])
    return paths, np.asarray(targets, dtype=np.float32)


def _generator(seed):
    return torch.Generator().manual_seed(seed)


def _all(source, batch_size, *, shuffle=False, seed=0, train=True):
    batches = list(
        source.batches(batch_size, shuffle=shuffle, generator=_generator(seed), train=train)
    )
    return torch.cat([inputs for inputs, _ in batches]), torch.cat([t for _, t in batches])


@pytest.mark.parametrize("size", [16, 64])
def test_small_cnn_forward_gives_logits_per_class(size):
    model = SmallCNN(5)
    assert model(torch.zeros(3, 3, size, size)).shape == (3, 5)


def test_small_cnn_backward_step_gives_every_parameter_a_gradient():
    torch.manual_seed(0)
    model = SmallCNN(3)
    inputs, labels = torch.randn(4, 3, SIZE, SIZE), torch.tensor([0, 1, 2, 0])
    loss = torch.nn.functional.cross_entropy(model(inputs), labels)
    loss.backward()
    assert all(parameter.grad is not None for parameter in model.parameters())
    before = [parameter.detach().clone() for parameter in model.parameters()]
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_image_source_batches_shapes_and_targets_in_order(tmp_path):
    paths, targets = _write_images(tmp_path, count=5)
    source = ImageSource(paths, targets, size=SIZE)
    assert len(source) == 5
    batches = list(source.batches(2, shuffle=False, generator=None, train=False))
    assert [tuple(inputs.shape) for inputs, _ in batches] == [(2, 3, SIZE, SIZE)] * 2 + [
        (1, 3, SIZE, SIZE)
    ]
    assert torch.equal(torch.cat([t for _, t in batches]), torch.from_numpy(targets))
    assert all(inputs.dtype == torch.float32 for inputs, _ in batches)


def test_image_source_evaluation_is_centre_crop_and_ignores_the_generator(tmp_path):
    paths, targets = _write_images(tmp_path, count=3)
    source = ImageSource(paths, targets, size=SIZE)
    expected = torch.stack([to_tensor(center_crop_resize(load_rgb(p), SIZE)) for p in paths])
    assert torch.equal(_all(source, 2, seed=1, train=False)[0], expected)
    assert torch.equal(_all(source, 2, seed=2, train=False)[0], expected)
    no_augment = ImageSource(paths, targets, size=SIZE, augment=False)
    assert torch.equal(_all(no_augment, 2, seed=3, train=True)[0], expected)


def test_image_source_training_same_seed_same_batches(tmp_path):
    paths, targets = _write_images(tmp_path)
    source = ImageSource(paths, targets, size=SIZE)
    first = _all(source, 3, shuffle=True, seed=5)
    again = _all(source, 3, shuffle=True, seed=5)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    other = _all(source, 3, shuffle=True, seed=6)
    assert not torch.equal(first[0], other[0])
    evaluated = _all(source, 3, train=False)[0]
    assert not torch.equal(_all(source, 3, seed=5)[0], evaluated)


def test_image_source_augmentation_independent_of_batch_size_and_threads(tmp_path):
    paths, targets = _write_images(tmp_path)
    serial = ImageSource(paths, targets, size=SIZE, workers=1)
    threaded = ImageSource(paths, targets, size=SIZE, workers=3)
    assert torch.equal(_all(serial, 1, seed=4)[0], _all(threaded, 5, seed=4)[0])


def test_image_source_rejects_misaligned_targets(tmp_path):
    paths, targets = _write_images(tmp_path, count=3)
    with pytest.raises(ValueError):
        ImageSource(paths, targets[:2], size=SIZE)


def test_load_rgb_applies_exif_orientation_and_converts_to_rgb(tmp_path):
    pixels = np.zeros((10, 20, 3), dtype=np.uint8)
    pixels[:, :10] = (255, 0, 0)  # left half red
    exif = Image.Exif()
    exif[0x0112] = 3  # orientation: rotated 180 degrees
    path = tmp_path / "photo.jpg"
    Image.fromarray(pixels, "RGB").save(path, exif=exif.tobytes(), quality=95)
    loaded = np.asarray(load_rgb(path))
    assert loaded[5, 15, 0] > 200 and loaded[5, 3, 0] < 60  # red now on the right
    grey = tmp_path / "grey.png"
    Image.new("L", (4, 4), 7).save(grey)
    assert load_rgb(grey).mode == "RGB"


class _TinyBackbone(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, kernel_size=3)
        self.norm = torch.nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(x))).mean(dim=(2, 3))


@pytest.fixture
def backbone_path(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "backbone.pt"
    torch.jit.save(torch.jit.script(_TinyBackbone()), str(path))
    return str(path)


@scripting
def test_load_backbone_is_frozen_in_eval_mode(backbone_path, tmp_path):
    backbone = load_backbone(backbone_path)
    assert not backbone.training
    assert all(not parameter.requires_grad for parameter in backbone.parameters())
    with pytest.raises(FileNotFoundError):
        load_backbone(str(tmp_path / "absent.pt"))


@scripting
def test_backbone_classifier_only_the_head_gets_gradients(backbone_path):
    model = BackboneClassifier(load_backbone(backbone_path), 3, image_size=SIZE)
    assert model.features == 4
    model.train()
    assert model.training and not model.backbone.training
    norm_state = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    logits = model(torch.randn(2, 3, SIZE, SIZE))
    assert logits.shape == (2, 3)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2])).backward()
    assert all(parameter.grad is None for parameter in model.backbone.parameters())
    assert all(parameter.grad is not None for parameter in model.head.parameters())
    # BatchNorm running statistics do not move in training mode either.
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, norm_state[key]), key


@scripting
def test_image_model_backbone_when_configured_else_small_cnn(backbone_path):
    assert isinstance(image_model(2, TrainConfig(image_size=SIZE)), SmallCNN)
    configured = image_model(2, TrainConfig(image_size=SIZE, backbone_path=backbone_path))
    assert isinstance(configured, BackboneClassifier)


def _config(*, max_epochs=2, backbone_path=None):
    return TrainConfig(
        seed=3,
        device="cpu",
        max_epochs=max_epochs,
        batch_size=4,
        image_size=SIZE,
        backbone_path=backbone_path,
    )


def test_fit_small_cnn_tiny_images_runs_and_repeats_exactly(tmp_path):
    paths, targets = _write_images(tmp_path)
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        model = SmallCNN(2, channels=(8, 16))
        train = ImageSource(paths, targets, size=SIZE)
        validation = ImageSource(paths[:4], targets[:4], size=SIZE)
        results.append((fit(model, train, validation, config=_config()), model))
    (first, model), (second, _) = results
    assert first.epochs_run == 2
    assert all(np.isfinite(row["train_loss"]) for row in first.history)
    losses = [(row["train_loss"], row["val_loss"]) for row in first.history]
    assert losses == [(row["train_loss"], row["val_loss"]) for row in second.history]
    assert all(torch.equal(first.state_dict[k], second.state_dict[k]) for k in first.state_dict)
    probs = predict_proba(model, validation, device="cpu", batch_size=3)
    assert probs.shape == (4, 2)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@scripting
def test_fit_backbone_classifier_trains_the_head_only(tmp_path, backbone_path):
    paths, targets = _write_images(tmp_path)
    model = image_model(2, _config(backbone_path=backbone_path))
    assert isinstance(model, BackboneClassifier)
    backbone_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head_before = {k: v.clone() for k, v in model.head.state_dict().items()}
    source = ImageSource(paths, targets, size=SIZE)
    fit(model, source, source, config=_config(max_epochs=1))
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, backbone_before[key]), key
    assert any(not torch.equal(v, head_before[k]) for k, v in model.head.state_dict().items())
