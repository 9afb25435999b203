"""The training loop on synthetic embeddings (no encoder): learning from soft labels,
determinism, early stopping with the best epoch restored, cancellation and progress."""

import hashlib

import numpy as np
import pandas as pd
import pytest
import torch

from annotation.agreement.soft import soft_cross_entropy
from ml.engine.training.config import TrainConfig
from ml.engine.training.loop import (
    Cancelled,
    Progress,
    TensorPairs,
    epoch_seed,
    fit,
    predict_proba,
    seeded,
)
from ml.engine.training.text import text_head
from ml.engine.training.weights import save_weights

DIMENSION = 8


def _pairs(inputs: np.ndarray, targets: np.ndarray) -> TensorPairs:
    return TensorPairs(
        torch.from_numpy(inputs.astype(np.float32)), torch.from_numpy(targets.astype(np.float32))
    )


def _separable(n: int, seed: int) -> TensorPairs:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    inputs = rng.normal(0.0, 1.0, (n, DIMENSION))
    inputs[:, 0] += np.where(labels == 1, 1.5, -1.5)
    return _pairs(inputs, np.eye(2)[labels])


def _weights_sha(state: dict[str, torch.Tensor], tmp_path, name: str) -> str:
    return save_weights(state, tmp_path / name)


def _without_seconds(history):
    return [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in history]


def _mixed(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two clusters whose annotators split 65/35 and 35/65: the majority label is right
    about the side but throws the disagreement away."""
    rng = np.random.default_rng(seed)
    side = np.arange(n) % 2
    inputs = rng.normal(0.0, 1.0, (n, DIMENSION))
    inputs[:, 0] += np.where(side == 1, 3.0, -3.0)
    soft = np.where(side[:, None] == 1, [0.35, 0.65], [0.65, 0.35])
    return inputs, soft


def test_fit_soft_targets_beat_majority_on_soft_cross_entropy_against_annotators():
    train_x, train_soft = _mixed(200, seed=1)
    val_x, val_soft = _mixed(60, seed=2)
    test_x, test_soft = _mixed(100, seed=3)
    majority = np.eye(2)[train_soft.argmax(axis=1)]
    val_majority = np.eye(2)[val_soft.argmax(axis=1)]
    config = TrainConfig(seed=0, device="cpu", max_epochs=60, patience=10, learning_rate=0.05)
    target = pd.DataFrame(test_soft, columns=["a", "b"])
    scores = {}
    for name, (train_t, val_t) in {
        "soft": (train_soft, val_soft),
        "majority": (majority, val_majority),
    }.items():
        model = text_head(DIMENSION, 2, config)
        fit(model, _pairs(train_x, train_t), _pairs(val_x, val_t), config=config)
        probs = predict_proba(
            model, _pairs(test_x, test_soft), device="cpu", batch_size=config.batch_size
        )
        scores[name] = soft_cross_entropy(
            pd.DataFrame(probs.astype(np.float64), columns=["a", "b"]), target
        )
    entropy = float(-(test_soft * np.log(test_soft)).sum(axis=1).mean())
    # The soft model approaches the annotators' own entropy (the minimum); the majority
    # model, confidently right about the side, pays for the 35% it was taught to ignore.
    assert scores["soft"] < entropy + 0.02
    assert scores["majority"] > scores["soft"] + 0.1


def test_fit_same_seed_same_history_and_weights_other_seed_differs(tmp_path):
    train, validation = _separable(96, seed=1), _separable(32, seed=2)
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        config = TrainConfig(seed=seed, device="cpu", max_epochs=4, head="mlp", hidden=16)
        result = fit(text_head(DIMENSION, 2, config), train, validation, config=config)
        runs[name] = (
            _without_seconds(result.history),
            _weights_sha(result.state_dict, tmp_path, name),
        )
    assert runs["a"] == runs["b"]
    assert runs["a"][0] != runs["c"][0]
    assert runs["a"][1] != runs["c"][1]


def test_fit_leaves_the_callers_random_state_alone():
    train, validation = _separable(32, seed=1), _separable(16, seed=2)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    config = TrainConfig(device="cpu", max_epochs=2, head="mlp", hidden=8)
    fit(text_head(DIMENSION, 2, config), train, validation, config=config)
    assert torch.equal(torch.rand(3), expected)


def test_fit_early_stopping_stops_and_restores_the_best_epoch(tmp_path):
    # Validation targets are the opposite of the train targets: every epoch of learning
    # raises the validation loss, so epoch 1 is the best and patience 2 stops at 3.
    train = _separable(64, seed=1)
    flipped = _separable(32, seed=2)
    validation = TensorPairs(flipped.inputs, flipped.targets.flip(1))
    config = TrainConfig(seed=3, device="cpu", max_epochs=30, patience=2, learning_rate=0.05)
    model = text_head(DIMENSION, 2, config)
    result = fit(model, train, validation, config=config)
    losses = [epoch["val_loss"] for epoch in result.history]
    assert result.best_epoch == 1 and result.epochs_run == 3 and result.stopped_early
    assert losses[0] < losses[1] < losses[2]
    one_epoch = TrainConfig(seed=3, device="cpu", max_epochs=1, learning_rate=0.05)
    reference = fit(text_head(DIMENSION, 2, one_epoch), train, validation, config=one_epoch)
    for name, value in reference.state_dict.items():
        assert torch.equal(result.state_dict[name], value)
        assert torch.equal(model.state_dict()[name], value)


def test_fit_runs_all_epochs_when_validation_keeps_improving():
    config = TrainConfig(seed=0, device="cpu", max_epochs=3, patience=1, learning_rate=0.01)
    result = fit(
        text_head(DIMENSION, 2, config), _separable(64, 1), _separable(32, 2), config=config
    )
    assert (result.epochs_run, result.best_epoch, result.stopped_early) == (3, 3, False)
    assert result.device == "cpu" and result.samples_per_s > 0
    assert set(result.history[0]) == {"epoch", "train_loss", "val_loss", "val_accuracy", "seconds"}


def test_fit_progress_is_called_per_batch_with_epoch_and_batch_counts():
    updates: list[Progress] = []
    config = TrainConfig(device="cpu", max_epochs=2, patience=5, batch_size=16)
    fit(
        text_head(DIMENSION, 2, config),
        _separable(50, 1),
        _separable(10, 2),
        config=config,
        progress=updates.append,
    )
    assert updates == [Progress(e, 2, b, 4) for e in (1, 2) for b in (1, 2, 3, 4)]


def test_fit_should_stop_raises_cancelled_before_the_next_batch():
    asked = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 3

    config = TrainConfig(device="cpu", max_epochs=5, batch_size=16)
    with pytest.raises(Cancelled, match="epoch 1, batch 4"):
        fit(
            text_head(DIMENSION, 2, config),
            _separable(64, 1),
            _separable(16, 2),
            config=config,
            should_stop=should_stop,
        )


def test_fit_empty_train_or_validation_raises_value_error():
    config = TrainConfig(device="cpu")
    empty = TensorPairs(torch.zeros(0, DIMENSION), torch.zeros(0, 2))
    with pytest.raises(ValueError, match="train split"):
        fit(text_head(DIMENSION, 2, config), empty, _separable(8, 1), config=config)
    with pytest.raises(ValueError, match="validation split"):
        fit(text_head(DIMENSION, 2, config), _separable(8, 1), empty, config=config)


def test_fit_diverging_loss_raises_value_error():
    config = TrainConfig(device="cpu", max_epochs=2)
    train = _separable(16, 1)
    train.inputs[0, 0] = float("nan")
    with pytest.raises(ValueError, match="diverged"):
        fit(text_head(DIMENSION, 2, config), train, _separable(8, 2), config=config)


def test_predict_proba_rows_are_distributions_in_source_order():
    config = TrainConfig(device="cpu")
    model = text_head(DIMENSION, 3, config)
    source = TensorPairs(torch.randn(10, DIMENSION), torch.zeros(10, 3))
    probs = predict_proba(model, source, device="cpu", batch_size=4)
    assert probs.dtype == np.float32 and probs.shape == (10, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    whole = torch.softmax(model(source.inputs), dim=1).detach().numpy()
    np.testing.assert_allclose(probs, whole, atol=1e-6)


def test_tensor_pairs_mismatched_rows_raise_value_error():
    with pytest.raises(ValueError, match="target rows"):
        TensorPairs(torch.zeros(3, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="2-D"):
        TensorPairs(torch.zeros(3, 2), torch.zeros(3))


def test_tensor_pairs_shuffle_is_a_permutation_driven_by_the_generator():
    pairs = TensorPairs(torch.arange(10.0)[:, None], torch.zeros(10, 2))

    def order(seed: int) -> list[float]:
        generator = torch.Generator().manual_seed(seed)
        batches = pairs.batches(4, shuffle=True, generator=generator, train=True)
        return [value for inputs, _ in batches for value in inputs[:, 0].tolist()]

    assert sorted(order(1)) == list(range(10))
    assert order(1) == order(1) != order(2)


def test_epoch_seed_depends_on_seed_and_epoch():
    assert epoch_seed(0, 1) == epoch_seed(0, 1)
    assert len({epoch_seed(0, 1), epoch_seed(0, 2), epoch_seed(1, 1)}) == 3


def test_seeded_restores_the_global_generator():
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    with seeded(99):
        inside = torch.rand(2)
    assert torch.equal(torch.rand(2), expected)
    with seeded(99):
        assert torch.equal(torch.rand(2), inside)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_on_cuda_is_deterministic_and_returns_cpu_weights(tmp_path):
    train, validation = _separable(256, seed=1), _separable(64, seed=2)
    runs = []
    for name in ("a", "b"):
        config = TrainConfig(seed=1, device="cuda", max_epochs=3, head="mlp", hidden=32)
        result = fit(text_head(DIMENSION, 2, config), train, validation, config=config)
        assert result.device == "cuda"
        assert all(value.device.type == "cpu" for value in result.state_dict.values())
        runs.append(
            (_without_seconds(result.history), _weights_sha(result.state_dict, tmp_path, name))
        )
    assert runs[0] == runs[1]


def test_weights_sha_helper_is_the_file_hash(tmp_path):
    config = TrainConfig(device="cpu")
    state = text_head(DIMENSION, 2, config).state_dict()
    digest = _weights_sha(state, tmp_path, "w.pt")
    assert digest == hashlib.sha256((tmp_path / "w.pt").read_bytes()).hexdigest()
