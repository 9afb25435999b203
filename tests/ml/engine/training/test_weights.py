"""Weights files: atomic, hashed, and loaded only after the hash check with
``torch.load(weights_only=True)``; tampered or non-tensor payloads are refused."""

import hashlib
import io
import os
import pickle

import pytest
import torch

from ml.engine.training.weights import WeightsTampered, load_weights, save_weights


def _state() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {"weight": torch.randn(3, 4, generator=generator), "bias": torch.zeros(3)}


def test_save_then_load_with_the_recorded_hash_returns_equal_tensors(tmp_path):
    path = tmp_path / "weights.pt"
    digest = save_weights(_state(), path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = load_weights(path, sha256=digest)
    assert set(loaded) == {"weight", "bias"}
    assert all(torch.equal(loaded[name], value) for name, value in _state().items())
    assert [p.name for p in tmp_path.iterdir()] == ["weights.pt"]  # no temporary file left


def test_save_same_weights_to_other_paths_gives_the_same_hash(tmp_path):
    assert save_weights(_state(), tmp_path / "a.pt") == save_weights(_state(), tmp_path / "b.pt")


def test_load_tampered_file_raises_weights_tampered(tmp_path):
    path = tmp_path / "weights.pt"
    digest = save_weights(_state(), path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsTampered, match="sha256"):
        load_weights(path, sha256=digest)


def test_load_other_weights_than_recorded_raises_weights_tampered(tmp_path):
    digest = save_weights(_state(), tmp_path / "a.pt")
    save_weights({"weight": torch.ones(2)}, tmp_path / "b.pt")
    with pytest.raises(WeightsTampered):
        load_weights(tmp_path / "b.pt", sha256=digest)


class _Exploit:
    """Unpickling this would run code: it must never be unpickled."""

    def __reduce__(self):
        return (os.system, ("touch pwned-by-weights",))


def test_load_pickled_code_with_a_matching_hash_is_refused_without_running_it(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "weights.pt"
    buffer = io.BytesIO()
    torch.save({"weight": torch.ones(1), "payload": _Exploit()}, buffer)
    path.write_bytes(buffer.getvalue())
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    with pytest.raises(WeightsTampered, match="not a plain weights file"):
        load_weights(path, sha256=digest)
    assert not (tmp_path / "pwned-by-weights").exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_load_plain_pickle_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    path.write_bytes(pickle.dumps({"weight": [1.0, 2.0]}))
    with pytest.raises(WeightsTampered):
        load_weights(path, sha256=hashlib.sha256(path.read_bytes()).hexdigest())


def test_load_allowed_payload_that_is_not_a_state_dict_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    buffer = io.BytesIO()
    torch.save({"weight": 3, "bias": "text"}, buffer)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(WeightsTampered, match="names to tensors"):
        load_weights(path, sha256=hashlib.sha256(buffer.getvalue()).hexdigest())


def test_load_malformed_hash_raises_value_error(tmp_path):
    path = tmp_path / "weights.pt"
    save_weights(_state(), path)
    with pytest.raises(ValueError, match="sha256"):
        load_weights(path, sha256="abc")


def test_save_non_tensor_value_raises_value_error(tmp_path):
    with pytest.raises(ValueError, match="names to tensors"):
        save_weights({"weight": [1.0]}, tmp_path / "w.pt")  # type: ignore[dict-item]
