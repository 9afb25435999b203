"""``run_baseline``: one baseline run from a bundle directory to its artefacts.

The one entry point the Django side calls (through a task or the ``train_baseline``
command); it knows nothing of runs or rows, only a ``RunSpec`` and an output directory.

Steps: check the spec against the bundle (before any training, so a bad group key or
survey question fails in a second, not after an hour); read the three splits; for text,
embed every text once through the cache with the frozen encoder and train a head, for
images train ``image_model`` on ``ImageSource``; predict validation and test; evaluate
(classification metrics against the target's hard labels, soft metrics against the
annotators' distributions, the item-group and annotator-group tables on the test split);
write the artefacts.

Invariants:

- Artefacts under ``out_dir``: ``weights.pt``, ``predictions.parquet``,
  ``group_metrics.csv``, ``annotator_groups.csv``, ``plots/{loss,confusion,groups}.png``
  and, last, ``metrics.json``: its presence means the run finished. Each file is written
  whole; ``weights.pt`` atomically (``save_weights``).
- ``metrics.json`` holds JSON only (no NaN: undefined values are ``null``), sorted keys.
  The same spec on the same device gives the same file except the timings (``wall_s``,
  ``samples_per_s``, ``encode.seconds``, ``encode.sentences_per_s``, ``history[].seconds``)
  and the cache counts of ``encode``; the other artefacts are byte-identical.
- ``progress(phase, p)`` gets each phase (``"encode"``, for text only; ``"train"``;
  ``"evaluate"``) once with ``None`` when it starts, then ``Progress`` updates: per
  training batch, and while encoding per chunk of texts (``epoch=epochs=1``,
  ``batch``/``batches`` counting distinct texts encoded / to encode). ``should_stop`` is
  asked per encode chunk and per training batch and raises ``Cancelled``.
"""

import importlib.metadata
import json
import math
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch

from ml.engine._atomic import write_bytes_atomically
from ml.engine.encoders import EmbeddingCache, Encoder, EncoderSpec, embed_texts, load_encoder
from ml.engine.evaluation import (
    annotator_group_agreement,
    classification_metrics,
    confusion_png,
    group_bars_png,
    intersection_groups,
    item_group_table,
    loss_curves_png,
    soft_metrics,
)
from ml.engine.files import write_csv, write_parquet
from ml.engine.training.config import TrainConfig, resolve_device
from ml.engine.training.data import TARGETS, Examples, check_classes, examples_from_bundle
from ml.engine.training.image import ImageSource, image_model
from ml.engine.training.loop import (
    Cancelled,
    FitResult,
    Progress,
    TensorPairs,
    TensorSource,
    fit,
    predict_proba,
    seeded,
)
from ml.engine.training.text import text_head
from ml.engine.training.weights import save_weights

# An entry of ``annotator_questions`` that stands for every survey question of the bundle.
ALL_QUESTIONS = ""
MAX_GROUP_KEYS = 2
WEIGHTS_FILE = "weights.pt"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.parquet"
GROUP_METRICS_FILE = "group_metrics.csv"
ANNOTATOR_GROUPS_FILE = "annotator_groups.csv"
PLOTS_DIR = "plots"
EVALUATED_SPLITS = ("validation", "test")

PhaseProgress = Callable[[str, Progress | None], None]


class EncoderLoader(Protocol):
    """How ``run_baseline`` gets an encoder; ``load_encoder`` unless a test passes a double."""

    def __call__(self, spec: EncoderSpec, *, device: str) -> Encoder: ...


@dataclass(frozen=True)
class RunSpec:
    """What to train: the bundle, its modality and classes (the schema's order), the
    target (one of ``TARGETS``), hyperparameters, the encoder (text only), up to two item
    metadata keys to group the test items by, and survey questions of
    ``annotators.parquet`` to compare annotator groups on (``""`` stands for all of them).
    Groups smaller than ``min_group_size`` are flagged ``small``."""

    bundle_root: Path
    modality: Literal["text", "image"]
    classes: tuple[str, ...]
    target: str
    config: TrainConfig
    encoder: EncoderSpec | None
    group_by: tuple[str, ...] = ()
    annotator_questions: tuple[str, ...] = ()
    min_group_size: int = 30

    def __post_init__(self) -> None:
        check_classes(self.classes)
        if self.modality not in ("text", "image"):
            raise ValueError(f"Unknown modality {self.modality!r}; expected 'text' or 'image'.")
        if self.target not in TARGETS:
            raise ValueError(f"Unknown target {self.target!r}; expected one of {TARGETS}.")
        if self.modality == "text" and self.encoder is None:
            raise ValueError("A text baseline needs an encoder.")
        if self.modality == "image" and self.encoder is not None:
            raise ValueError("An image baseline takes no text encoder.")
        if len(self.group_by) > MAX_GROUP_KEYS or len(set(self.group_by)) != len(self.group_by):
            raise ValueError(
                f"group_by takes one or two distinct metadata keys, got {list(self.group_by)}."
            )
        if any(not key for key in self.group_by):
            raise ValueError("A group_by key must not be empty.")
        if self.min_group_size < 1:
            raise ValueError(f"min_group_size must be positive, got {self.min_group_size}.")


@dataclass(frozen=True)
class RunOutcome:
    """``metrics`` is the content of ``metrics.json``; ``files`` every artefact written,
    sorted; ``weights_sha256`` the hash ``load_weights`` must be given."""

    metrics: dict[str, Any]
    files: list[Path]
    weights_sha256: str


def _plain(value: object) -> object:
    """A table cell or metric as JSON holds it: numpy scalars unwrapped, NaN as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    return [
        {str(column): _plain(value) for column, value in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def environment(device: str) -> dict[str, str | None]:
    """The versions a run's numbers depend on (sentence-transformers read from its
    package metadata, not imported)."""
    try:
        sentence_transformers: str | None = importlib.metadata.version("sentence-transformers")
    except importlib.metadata.PackageNotFoundError:
        sentence_transformers = None
    return {
        "device": device,
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cuda_device": torch.cuda.get_device_name() if device == "cuda" else None,
    }


def _questions(spec: RunSpec, annotators: pd.DataFrame) -> list[str]:
    available = [str(column) for column in annotators.columns if column != "annotator"]
    chosen: list[str] = []
    for question in spec.annotator_questions:
        for name in available if question == ALL_QUESTIONS else [question]:
            if name not in available:
                raise ValueError(
                    f"{name!r} is not a survey question of this version's annotators; "
                    f"known: {available}."
                )
            if name not in chosen:
                chosen.append(name)
    return chosen


def _item_groups(spec: RunSpec, test: Examples) -> dict[str, list[object]]:
    groups: dict[str, list[object]] = {}
    for key in spec.group_by:
        values = [metadata.get(key) for metadata in test.metadata]
        if all(value is None for value in values):
            raise ValueError(f"No test item has the metadata key {key!r} to group by.")
        groups[key] = values
    if len(spec.group_by) == MAX_GROUP_KEYS:
        groups.update(intersection_groups(groups, *spec.group_by))
    return groups


def _read_table(root: Path, name: str) -> pd.DataFrame:
    path = root / name
    if not path.is_file():
        raise ValueError(f"The bundle at {root} has no {name}.")
    return pd.read_parquet(path)


def _check_stop(should_stop: Callable[[], bool] | None, phase: str) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled(f"Cancelled while {phase}.")


def _text_sources(
    spec: RunSpec,
    splits: Mapping[str, Examples],
    *,
    encoder_spec: EncoderSpec,
    device: str,
    cache: EmbeddingCache | None,
    encoder_loader: EncoderLoader,
    progress: PhaseProgress | None,
    should_stop: Callable[[], bool] | None,
) -> tuple[torch.nn.Module, dict[str, TensorSource], dict[str, Any]]:
    encoder = encoder_loader(encoder_spec, device=device)

    def encoded(done: int, total: int) -> None:
        _check_stop(should_stop, "encoding")
        if progress is not None:
            progress("encode", Progress(epoch=1, epochs=1, batch=done, batches=total))

    texts = [text for examples in splits.values() for text in examples.inputs]
    vectors, stats = embed_texts(
        texts, encoder=encoder, cache=cache, batch_size=spec.config.batch_size, progress=encoded
    )
    sources: dict[str, TensorSource] = {}
    start = 0
    for name, examples in splits.items():
        rows = vectors[start : start + len(examples)]
        start += len(examples)
        sources[name] = TensorPairs(torch.from_numpy(rows), torch.from_numpy(examples.targets))
    model = text_head(encoder.dimension, len(spec.classes), spec.config)
    encode = {**asdict(stats), "encoder": encoder_spec.key, "cache_id": encoder_spec.cache_id()}
    return model, sources, encode


def _image_sources(
    spec: RunSpec, splits: Mapping[str, Examples]
) -> tuple[torch.nn.Module, dict[str, TensorSource]]:
    config = spec.config
    # Seeded here: the image model's initial weights depend on the run's seed only.
    with seeded(config.seed):
        model = image_model(len(spec.classes), config)
    sources: dict[str, TensorSource] = {
        name: ImageSource(
            examples.inputs, examples.targets, size=config.image_size, augment=config.augment
        )
        for name, examples in splits.items()
    }
    return model, sources


def _predictions(
    splits: Mapping[str, Examples],
    probabilities: Mapping[str, npt.NDArray[np.float32]],
    classes: Sequence[str],
) -> pd.DataFrame:
    parts = []
    for split in sorted(EVALUATED_SPLITS):
        examples, probs = splits[split], probabilities[split]
        part = pd.DataFrame(
            {
                "item_id": pd.array(examples.item_ids, dtype="int64"),
                "split": pd.array([split] * len(examples), dtype="string"),
                "true_label": pd.array(
                    [classes[label] if label >= 0 else None for label in examples.labels],
                    dtype="string",
                ),
                "predicted_label": pd.array(
                    [classes[index] for index in probs.argmax(axis=1)], dtype="string"
                ),
            }
        )
        for index, name in enumerate(classes):
            part[f"prob_{name}"] = probs[:, index].astype(np.float64)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _evaluation(
    examples: Examples, probs: npt.NDArray[np.float32], classes: Sequence[str]
) -> dict[str, Any]:
    return {
        **classification_metrics(probs, examples.labels, classes),
        **soft_metrics(probs, examples.soft, classes),
    }


def run_baseline(
    spec: RunSpec,
    out_dir: Path,
    *,
    cache: EmbeddingCache | None,
    progress: PhaseProgress | None = None,
    should_stop: Callable[[], bool] | None = None,
    encoder_loader: EncoderLoader = load_encoder,
) -> RunOutcome:
    """Train and evaluate the baseline ``spec`` describes, writing its artefacts to
    ``out_dir`` (created if missing); see the module's invariants."""
    root = Path(spec.bundle_root)
    config = spec.config
    device = resolve_device(config.device)
    splits = {
        split: examples_from_bundle(
            root, split, classes=spec.classes, target=spec.target, modality=spec.modality
        )
        for split in ("train", "validation", "test")
    }
    for split, examples in splits.items():
        if len(examples) == 0:
            raise ValueError(
                f"The {split} split has no items with a usable {spec.target!r} target."
            )
    annotations = _read_table(root, "annotations.parquet")
    annotators = _read_table(root, "annotators.parquet")
    questions = _questions(spec, annotators)
    groups = _item_groups(spec, splits["test"])

    out = Path(out_dir)
    # A metrics.json left by an earlier attempt would claim this run finished.
    (out / METRICS_FILE).unlink(missing_ok=True)

    encode: dict[str, Any] | None = None
    if spec.encoder is not None:  # a text run (RunSpec: an encoder exactly for text)
        if progress is not None:
            progress("encode", None)
        model, sources, encode = _text_sources(
            spec,
            splits,
            encoder_spec=spec.encoder,
            device=device,
            cache=cache,
            encoder_loader=encoder_loader,
            progress=progress,
            should_stop=should_stop,
        )
    else:
        model, sources = _image_sources(spec, splits)

    if progress is not None:
        progress("train", None)
    result: FitResult = fit(
        model,
        sources["train"],
        sources["validation"],
        config=config,
        progress=None if progress is None else (lambda update: progress("train", update)),
        should_stop=should_stop,
    )

    if progress is not None:
        progress("evaluate", None)
    _check_stop(should_stop, "evaluating")
    probabilities = {
        split: predict_proba(model, sources[split], device=device, batch_size=config.batch_size)
        for split in EVALUATED_SPLITS
    }
    evaluations = {
        split: _evaluation(splits[split], probabilities[split], spec.classes)
        for split in EVALUATED_SPLITS
    }
    test = splits["test"]
    predicted = probabilities["test"].argmax(axis=1)
    item_table = item_group_table(
        test.labels, predicted, groups, spec.classes, min_group_size=spec.min_group_size
    )
    annotator_table = annotator_group_agreement(
        test.item_ids,
        [spec.classes[index] for index in predicted],
        annotations,
        annotators,
        questions,
        min_group_size=spec.min_group_size,
    )

    out.mkdir(parents=True, exist_ok=True)
    weights_path = out / WEIGHTS_FILE
    weights_sha256 = save_weights(result.state_dict, weights_path)
    write_parquet(_predictions(splits, probabilities, spec.classes), out / PREDICTIONS_FILE)
    write_csv(item_table, out / GROUP_METRICS_FILE)
    write_csv(annotator_table, out / ANNOTATOR_GROUPS_FILE)
    plots = out / PLOTS_DIR
    loss_curves_png(result.history, plots / "loss.png")
    confusion_png(evaluations["test"]["confusion"], spec.classes, plots / "confusion.png")
    group_bars_png(item_table, plots / "groups.png")

    metrics: dict[str, Any] = {
        "test": evaluations["test"],
        "validation": evaluations["validation"],
        "history": result.history,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "environment": environment(device),
        "seed": config.seed,
        "wall_s": result.wall_s,
        "samples_per_s": result.samples_per_s,
        "encode": encode,
        "groups": {"items": _records(item_table), "annotators": _records(annotator_table)},
        "classes": list(spec.classes),
        "target": spec.target,
        "modality": spec.modality,
        "config": asdict(config),
        "weights_sha256": weights_sha256,
        "n": {split: len(examples) for split, examples in splits.items()},
    }
    metrics = {key: _plain(value) for key, value in metrics.items()}
    document = json.dumps(metrics, sort_keys=True, indent=2, allow_nan=False) + "\n"
    write_bytes_atomically(out / METRICS_FILE, document.encode("utf-8"))
    files = [
        weights_path,
        out / PREDICTIONS_FILE,
        out / GROUP_METRICS_FILE,
        out / ANNOTATOR_GROUPS_FILE,
        plots / "loss.png",
        plots / "confusion.png",
        plots / "groups.png",
        out / METRICS_FILE,
    ]
    return RunOutcome(metrics=metrics, files=sorted(files), weights_sha256=weights_sha256)
