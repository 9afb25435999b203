"""Test doubles for the training engine: a fake sentence encoder and tiny bundles written
with pandas/pyarrow in the columns of a dataset version (``ml.build.bundle``)."""

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ml.engine.encoders import EncoderSpec

FAKE_DIMENSION = 8
CLASSES = ("neg", "pos")


def fake_spec(directory: Path, key: str = "fake") -> EncoderSpec:
    """A spec over a tiny model directory (the cache id hashes its files)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps({"model": key}))
    return EncoderSpec(key=key, path=str(directory))


@dataclass
class FakeEncoder:
    """Deterministic vectors from the text's hash, with feature 0 saying whether the text
    contains "good" (+1) or not (-1), so a head can learn the label. Counts what it
    encodes."""

    spec: EncoderSpec
    device: str = "cpu"
    dimension: int = FAKE_DIMENSION
    calls: list[list[str]] = field(default_factory=list)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        self.calls.append(list(texts))
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            vector = np.random.default_rng(seed).normal(0.0, 0.3, self.dimension)
            vector[0] += 1.0 if "good" in text else -1.0
            rows.append(vector)
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dimension)

    @property
    def encoded(self) -> list[str]:
        return [text for call in self.calls for text in call]


@dataclass(frozen=True)
class Item:
    item_id: int
    split: str
    content: str  # the text, or the image file name under images/
    votes: tuple[str, ...]  # one label per annotator, in ANNOTATORS order ("" = did not label)
    metadata: dict[str, object]


ANNOTATORS = ("p-aaaa", "p-bbbb", "p-cccc")
SURVEY: dict[str, dict[str, str | None]] = {
    "p-aaaa": {"age": "18-29", "region": "north"},
    "p-bbbb": {"age": "30-49", "region": "south"},
    "p-cccc": {"age": "18-29", "region": None},
}


def _targets(votes: Sequence[str], classes: Sequence[str]) -> dict[str, object]:
    given = [vote for vote in votes if vote]
    counts = Counter(given)
    if not given:
        return {
            "majority": None,
            "majority_tied": False,
            "dawid_skene": None,
            "dawid_skene_confidence": None,
            "soft_label": None,
            "n_labels": 0,
        }
    top = max(counts.values())
    leaders = [name for name in classes if counts[name] == top]
    soft = [counts[name] / len(given) for name in classes]
    return {
        "majority": leaders[0],
        "majority_tied": len(leaders) > 1,
        "dawid_skene": leaders[-1],
        "dawid_skene_confidence": top / len(given),
        "soft_label": soft,
        "n_labels": len(given),
    }


def write_bundle(
    root: Path,
    items: Sequence[Item],
    *,
    modality: str = "text",
    classes: Sequence[str] = CLASSES,
    drop: Sequence[str] = (),
) -> Path:
    """Write ``data/<split>.parquet``, ``annotations.parquet`` and ``annotators.parquet``
    for ``items`` (columns in ``drop`` left out of the data files)."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    rows = []
    for item in items:
        row: dict[str, object] = {
            "item_id": item.item_id,
            "external_id": f"ext-{item.item_id}",
            modality: item.content if modality == "text" else f"images/{item.content}",
            "split": item.split,
            **_targets(item.votes, classes),
            "metadata": json.dumps(item.metadata, sort_keys=True),
        }
        rows.append(row)
    frame = pd.DataFrame(rows).drop(columns=list(drop))
    frame["item_id"] = frame["item_id"].astype("int64")
    for column in ("majority", "dawid_skene"):
        if column in frame:
            frame[column] = frame[column].astype("string")
    for split in ("train", "validation", "test"):
        part = frame[frame["split"] == split].reset_index(drop=True)
        part.to_parquet(root / "data" / f"{split}.parquet", index=False)
    annotations = pd.DataFrame(
        [
            {
                "item_id": item.item_id,
                "annotator": annotator,
                "label": vote,
                "confidence": None,
                "time_spent_ms": 1000,
            }
            for item in items
            for annotator, vote in zip(ANNOTATORS, item.votes, strict=True)
            if vote
        ]
    )
    annotations.to_parquet(root / "annotations.parquet", index=False)
    annotators = pd.DataFrame([{"annotator": name, **SURVEY[name]} for name in ANNOTATORS])
    for column in ("age", "region"):
        annotators[column] = annotators[column].astype("string")
    annotators.to_parquet(root / "annotators.parquet", index=False)
    return root


def text_items(
    per_split: Sequence[tuple[str, int]] = (("train", 24), ("validation", 8), ("test", 12)),
) -> list[Item]:
    """Good and bad sentences, unanimous or 2-1, with gender / tone metadata."""
    items = []
    item_id = 1
    for split, count in per_split:
        for index in range(count):
            positive = index % 2 == 0
            label = "pos" if positive else "neg"
            other = "neg" if positive else "pos"
            votes = (label, label, other if index % 3 == 0 else label)
            word = "good" if positive else "bad"
            items.append(
                Item(
                    item_id=item_id,
                    split=split,
                    content=f"a {word} sentence number {item_id}",
                    votes=votes,
                    metadata={
                        "gender": "F" if index % 4 < 2 else "M",
                        "tone": "darker" if index % 3 == 0 else "lighter",
                    },
                )
            )
            item_id += 1
    return items


def image_items(
    root: Path,
    per_split: Sequence[tuple[str, int]] = (("train", 12), ("validation", 4), ("test", 6)),
) -> list[Item]:
    """Reddish ("pos") and bluish ("neg") 20x20 PNGs with noise, written under images/."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    items = []
    item_id = 1
    for split, count in per_split:
        for index in range(count):
            positive = index % 2 == 0
            pixels = rng.integers(0, 60, size=(20, 20, 3))
            pixels[..., 0 if positive else 2] += 180
            name = f"{item_id:04d}.png"
            Image.fromarray(pixels.astype(np.uint8), "RGB").save(root / "images" / name)
            label = "pos" if positive else "neg"
            items.append(
                Item(
                    item_id=item_id,
                    split=split,
                    content=name,
                    votes=(label, label, label),
                    metadata={"gender": "F" if index % 2 else "M"},
                )
            )
            item_id += 1
    return items
