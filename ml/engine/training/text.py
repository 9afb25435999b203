"""The trainable head of the text baseline, on top of frozen sentence embeddings.

``linear``: one affine layer, logistic regression on the embedding. ``mlp``: one hidden
ReLU layer of ``config.hidden`` units with dropout ``config.dropout``. The head's initial
weights depend on ``config.seed`` only (built inside ``seeded``), never on what the
process drew from torch's generators before.
"""

import torch

from ml.engine.training.config import TrainConfig
from ml.engine.training.loop import seeded


def text_head(dimension: int, classes: int, config: TrainConfig) -> torch.nn.Module:
    """A head mapping ``(b, dimension)`` embeddings to ``(b, classes)`` logits."""
    if dimension < 1:
        raise ValueError(f"The embedding dimension must be positive, got {dimension}.")
    if classes < 2:
        raise ValueError(f"A classifier needs at least two classes, got {classes}.")
    with seeded(config.seed):
        if config.head == "linear":
            return torch.nn.Linear(dimension, classes)
        return torch.nn.Sequential(
            torch.nn.Linear(dimension, config.hidden),
            torch.nn.ReLU(),
            torch.nn.Dropout(config.dropout),
            torch.nn.Linear(config.hidden, classes),
        )
