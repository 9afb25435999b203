"""The training loop shared by the text and image baselines.

``fit`` minimises the soft cross-entropy ``-sum_c t_c log softmax(z)_c`` between the
model's outputs and target distributions (for one-hot targets it is the ordinary cross-
entropy, so hard and soft targets share one loss) with AdamW, and stops early on the
validation loss, restoring the best epoch's weights.

Invariants:

- Reproducible: the same model initialisation, data, config and device give the same
  history (timings aside) and the same weights. All randomness comes from ``config.seed``:
  the torch generators are seeded inside a forked RNG state (the caller's global state is
  left as it was), each epoch's shuffle and augmentation use a generator seeded from
  ``(seed, epoch)``, and deterministic algorithms are switched on for the run.
- Epoch ``e`` (1-based) is kept when its validation loss is strictly below every earlier
  one; ``patience`` epochs in a row without that stop the run. The returned weights, and the
  model's after ``fit``, are the kept epoch's.
- ``should_stop()`` is asked before every batch; True raises ``Cancelled`` and the model is
  left as it was at that moment (the caller discards it).
- On CUDA: bf16 autocast for the forward pass (the loss in float32) and batches copied
  from pinned memory; the returned ``state_dict`` is always on the CPU.
"""

import contextlib
import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F  # noqa: N812 (the conventional alias)

from ml.engine.training.config import TrainConfig, resolve_device


class TensorSource(Protocol):
    """Rows of (input, target distribution); ``batches`` yields CPU tensors, inputs
    ``(b, ...)`` and float32 targets ``(b, C)``. ``train`` asks for training-time
    transforms (augmentation); ``generator`` drives the shuffle and those transforms."""

    def __len__(self) -> int: ...

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None,
        train: bool,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


@dataclass
class TensorPairs:
    """In-memory inputs (e.g. cached text embeddings) and float32 targets, row-aligned."""

    inputs: torch.Tensor
    targets: torch.Tensor

    def __post_init__(self) -> None:
        if self.targets.ndim != 2:
            raise ValueError(f"targets must be 2-D (n, classes), got {tuple(self.targets.shape)}.")
        if self.inputs.shape[0] != self.targets.shape[0]:
            raise ValueError(
                f"{self.inputs.shape[0]} inputs but {self.targets.shape[0]} target rows."
            )
        self.targets = self.targets.to(torch.float32)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None,
        train: bool,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Rows in order, or permuted by ``generator``; ``train`` changes nothing here."""
        count = len(self)
        if shuffle:
            order = torch.randperm(count, generator=generator)
            for start in range(0, count, batch_size):
                rows = order[start : start + batch_size]
                yield self.inputs[rows], self.targets[rows]
        else:
            for start in range(0, count, batch_size):
                yield (
                    self.inputs[start : start + batch_size],
                    self.targets[start : start + batch_size],
                )


@dataclass(frozen=True)
class Progress:
    """Where a run is: ``epoch`` of ``epochs`` and ``batch`` of ``batches``, all 1-based."""

    epoch: int
    epochs: int
    batch: int
    batches: int


class Cancelled(Exception):
    """``should_stop()`` asked the run to stop."""


@dataclass
class FitResult:
    """The kept epoch's weights (CPU) and the run's record. ``history`` has one entry per
    epoch run: epoch, train_loss, val_loss, val_accuracy (argmax against the target
    distribution's mode) and seconds; ``samples_per_s`` counts training samples over the
    time spent in training batches."""

    state_dict: dict[str, torch.Tensor]
    history: list[dict[str, float]]
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    samples_per_s: float
    wall_s: float
    device: str


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s generator: well mixed, the same on every machine."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)
    return int(state[0])


@contextlib.contextmanager
def seeded(seed: int, *, device: str = "cpu") -> Iterator[None]:
    """Run the block with torch's generators seeded from ``seed`` (CPU, and the current
    CUDA device on ``device="cuda"``), restoring the caller's RNG state afterwards."""
    devices = [torch.cuda.current_device()] if device == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _deterministic(device: str) -> Iterator[None]:
    # warn_only: on CUDA, cuBLAS wants CUBLAS_WORKSPACE_CONFIG set before it starts; an
    # encoder may already have started it, and a warning beats failing the run.
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    if device == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.deterministic = previous[2]
        torch.backends.cudnn.benchmark = previous[3]


def _autocast(device: str) -> contextlib.AbstractContextManager[object]:
    if device == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _to_device(tensor: torch.Tensor, device: str) -> torch.Tensor:
    if device == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


def soft_cross_entropy_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``-sum_c targets_c log_softmax(logits)_c``, computed in float32."""
    return -(targets.float() * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()


def _evaluate(
    model: torch.nn.Module, source: TensorSource, *, device: str, batch_size: int
) -> tuple[float, float]:
    model.eval()
    loss_sum = 0.0
    correct = 0
    with torch.no_grad():
        for inputs, targets in source.batches(
            batch_size, shuffle=False, generator=None, train=False
        ):
            inputs, targets = _to_device(inputs, device), _to_device(targets, device)
            with _autocast(device):
                logits = model(inputs)
            loss_sum += float(soft_cross_entropy_loss(logits, targets)) * len(targets)
            correct += int((logits.argmax(dim=1) == targets.argmax(dim=1)).sum())
    return loss_sum / len(source), correct / len(source)


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().to("cpu", copy=True) for name, value in model.state_dict().items()}


def fit(
    model: torch.nn.Module,
    train: TensorSource,
    validation: TensorSource,
    *,
    config: TrainConfig,
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FitResult:
    """Train ``model`` on ``train``, early-stopping on ``validation``; see the module's
    invariants. Both sources must be non-empty."""
    if len(train) == 0:
        raise ValueError("The train split has no rows to learn from.")
    if len(validation) == 0:
        raise ValueError("The validation split is empty; early stopping needs it.")
    device = resolve_device(config.device)
    started = time.perf_counter()
    model.to(device)
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    if not parameters:
        raise ValueError("The model has no trainable parameters.")
    optimiser = torch.optim.AdamW(
        parameters, lr=config.learning_rate, weight_decay=config.weight_decay
    )
    batches = -(-len(train) // config.batch_size)
    history: list[dict[str, float]] = []
    best_loss = float("inf")
    best_epoch = 0
    best_state = _cpu_state(model)
    stale = 0
    train_seconds = 0.0
    train_samples = 0
    with seeded(config.seed, device=device), _deterministic(device):
        for epoch in range(1, config.max_epochs + 1):
            epoch_started = time.perf_counter()
            generator = torch.Generator().manual_seed(epoch_seed(config.seed, epoch))
            model.train()
            loss_sum = 0.0
            for batch, (inputs, targets) in enumerate(
                train.batches(config.batch_size, shuffle=True, generator=generator, train=True),
                start=1,
            ):
                if should_stop is not None and should_stop():
                    raise Cancelled(f"Cancelled at epoch {epoch}, batch {batch}.")
                batch_started = time.perf_counter()
                inputs, targets = _to_device(inputs, device), _to_device(targets, device)
                optimiser.zero_grad(set_to_none=True)
                with _autocast(device):
                    logits = model(inputs)
                loss = soft_cross_entropy_loss(logits, targets)
                loss.backward()
                optimiser.step()
                loss_sum += float(loss.detach()) * len(targets)
                train_seconds += time.perf_counter() - batch_started
                train_samples += len(targets)
                if progress is not None:
                    progress(Progress(epoch, config.max_epochs, batch, batches))
            if not np.isfinite(loss_sum):
                raise ValueError(
                    f"Training diverged at epoch {epoch} (the loss is not finite); "
                    "lower the learning rate."
                )
            val_loss, val_accuracy = _evaluate(
                model, validation, device=device, batch_size=config.batch_size
            )
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": loss_sum / len(train),
                    "val_loss": val_loss,
                    "val_accuracy": val_accuracy,
                    "seconds": time.perf_counter() - epoch_started,
                }
            )
            if val_loss < best_loss:
                best_loss, best_epoch, stale = val_loss, epoch, 0
                best_state = _cpu_state(model)
            else:
                stale += 1
                if stale >= config.patience:
                    break
    model.load_state_dict(copy.deepcopy(best_state))
    return FitResult(
        state_dict=best_state,
        history=history,
        best_epoch=best_epoch,
        epochs_run=len(history),
        stopped_early=len(history) < config.max_epochs,
        samples_per_s=train_samples / train_seconds if train_seconds > 0 else 0.0,
        wall_s=time.perf_counter() - started,
        device=device,
    )


def predict_proba(
    model: torch.nn.Module, source: TensorSource, *, device: str, batch_size: int
) -> npt.NDArray[np.float32]:
    """Softmax probabilities float32 ``(len(source), C)`` in the source's row order, with
    the model in eval mode and no augmentation."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    model.to(device)
    model.eval()
    parts: list[npt.NDArray[np.float32]] = []
    with torch.no_grad():
        for inputs, _ in source.batches(batch_size, shuffle=False, generator=None, train=False):
            with _autocast(device):
                logits = model(_to_device(inputs, device))
            parts.append(F.softmax(logits.float(), dim=1).cpu().numpy().astype(np.float32))
    if not parts:
        raise ValueError("Nothing to predict: the source has no rows.")
    return np.concatenate(parts)
