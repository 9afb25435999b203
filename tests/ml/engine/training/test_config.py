"""TrainConfig validation and device resolution."""

import pytest
import torch

from ml.engine.training.config import TrainConfig, resolve_device


def test_train_config_defaults_are_valid():
    config = TrainConfig()
    assert (config.device, config.head, config.max_epochs, config.patience) == (
        "auto",
        "linear",
        50,
        5,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seed", -1),
        ("seed", 1.5),
        ("device", "tpu"),
        ("max_epochs", 0),
        ("patience", True),
        ("batch_size", 0),
        ("learning_rate", 0.0),
        ("learning_rate", float("nan")),
        ("weight_decay", -0.1),
        ("head", "transformer"),
        ("hidden", 0),
        ("dropout", 1.0),
        ("image_size", 4),
        ("backbone_path", ""),
    ],
)
def test_train_config_bad_value_raises_value_error_naming_it(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_resolve_device_cpu_and_auto():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_resolve_device_cuda_without_gpu_raises_value_error():
    with pytest.raises(ValueError, match="CUDA"):
        resolve_device("cuda")


def test_resolve_device_unknown_raises_value_error():
    with pytest.raises(ValueError, match="device"):
        resolve_device("cuda:1")
