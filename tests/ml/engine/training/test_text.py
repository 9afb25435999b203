"""The text head: shapes, and initial weights that depend on the seed only."""

import pytest
import torch

from ml.engine.training.config import TrainConfig
from ml.engine.training.text import text_head


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_text_head_maps_embeddings_to_class_logits(head):
    model = text_head(12, 3, TrainConfig(head=head, hidden=5))
    assert model(torch.zeros(4, 12)).shape == (4, 3)


def test_text_head_mlp_has_the_configured_width_and_dropout():
    model = text_head(12, 3, TrainConfig(head="mlp", hidden=5, dropout=0.25))
    assert isinstance(model, torch.nn.Sequential)
    assert model[0].out_features == 5 and model[2].p == 0.25


def test_text_head_same_seed_same_initial_weights_whatever_was_drawn_before():
    torch.manual_seed(1)
    first = text_head(6, 2, TrainConfig(seed=4, head="mlp", hidden=4)).state_dict()
    torch.rand(100)
    second = text_head(6, 2, TrainConfig(seed=4, head="mlp", hidden=4)).state_dict()
    other = text_head(6, 2, TrainConfig(seed=5, head="mlp", hidden=4)).state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not torch.equal(first["0.weight"], other["0.weight"])


def test_text_head_bad_sizes_raise_value_error():
    with pytest.raises(ValueError, match="two classes"):
        text_head(6, 1, TrainConfig())
    with pytest.raises(ValueError, match="dimension"):
        text_head(0, 2, TrainConfig())
