"""Writing a version's bundle into a local directory, file by file, deterministically.

The layout (``BUNDLE_FORMAT``):

- ``data/{train,validation,test}.parquet`` (+ ``.jsonl`` / ``.csv`` when asked): one row
  per item, ordered by item id;
- ``annotations.parquet``: one row per (item, annotator pseudonym) label;
- ``annotators.parquet``: pseudonym and the consented survey answers, one column each;
- ``images/<sha256>.<ext>``: the sanitised copies, for image projects;
- ``licenses.csv``: per item, its SPDX expression, attribution, source and creator;
- ``manifest.json``: every other file with its size and sha256, the recipe, the counts,
  what was left out and why, the code version and the build time.

Data files hold no time and no writer version (``ml.engine.files``): the same recipe on
the same data gives the same bytes. Only ``manifest.json`` says when it was built.
"""

import hashlib
import hmac
import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from django.conf import settings
from django.core.files.storage import default_storage

from annotation.surveys import parse_definition
from ml.build.aggregate import Targets
from ml.build.collect import Collected
from ml.engine import files as engine_files
from ml.recipes import SPLITS, Recipe

BUNDLE_FORMAT = "chorus-dataset/1"


def pseudonym_key_for(*, version_key: str, project_id: int, stable: bool) -> bytes:
    """Per version unless the recipe asks for the project's stable key (derived from the
    deployment's secret, so that it is never stored and differs between deployments)."""
    if not stable:
        return bytes.fromhex(version_key)
    message = f"chorus-dataset-pseudonyms:{project_id}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).digest()


def pseudonym(key: bytes, annotator_id: int) -> str:
    return "p-" + hmac.new(key, str(annotator_id).encode(), hashlib.sha256).hexdigest()[:16]


def image_path(sha256: str, stored_name: str) -> str:
    extension = stored_name.rsplit(".", 1)[-1].lower() if "." in stored_name else "bin"
    return f"images/{sha256}.{extension}"


def _in_item_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by item id (stable); items are read in that order, so usually as they are."""
    if not frame["item_id"].is_monotonic_increasing:
        frame = frame.sort_values("item_id", kind="stable")
    return frame.reset_index(drop=True)


def _soft_label_column(soft: pd.DataFrame) -> pd.arrays.ArrowExtensionArray:
    """One list of the category shares per row, an Arrow list column built from the
    matrix and its row offsets (a million Python lists would take 150 MB and seconds). A
    NaN share (an item without labels) is a null, as pyarrow makes it of a Python list."""
    shares = soft.to_numpy(dtype=float)
    rows, width = shares.shape
    flat = shares.ravel()
    lists = pa.ListArray.from_arrays(
        pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32)),
        pa.array(flat, mask=np.isnan(flat)),
    )
    return pd.arrays.ArrowExtensionArray(lists)


def _item_table(
    items: pd.DataFrame, splits: pd.Series, targets: Targets, *, image_project: bool
) -> pd.DataFrame:
    frame = pd.DataFrame({"item_id": items["item_id"].astype("int64")})
    frame["external_id"] = items["external_id"].astype(str)
    if image_project:
        frame["image"] = [
            image_path(sha, name) for sha, name in zip(items["sha256"], items["image"], strict=True)
        ]
    else:
        frame["text"] = items["text"].astype(str)
    frame["split"] = frame["item_id"].map(splits)
    index = frame["item_id"]
    if targets.majority is not None:
        frame["majority"] = index.map(targets.majority).astype("string")
        frame["majority_tied"] = index.map(targets.majority_tied).fillna(False).astype(bool)
    if targets.dawid_skene is not None and targets.dawid_skene_confidence is not None:
        frame["dawid_skene"] = index.map(targets.dawid_skene).astype("string")
        frame["dawid_skene_confidence"] = index.map(targets.dawid_skene_confidence).astype(float)
    if targets.soft is not None:
        frame["soft_label"] = _soft_label_column(targets.soft.reindex(index.to_numpy()))
    frame["n_labels"] = items["n_labels"].astype("int64")
    frame["metadata"] = [
        json.dumps(data, sort_keys=True, ensure_ascii=False) if data else "{}"
        for data in items["metadata"]
    ]
    return _in_item_order(frame)


def _in_label_order(item: npt.NDArray[np.int64], annotator: npt.NDArray[np.int64]) -> bool:
    """Whether labels are ordered by item, then annotator (as they are read)."""
    same_item = item[1:] == item[:-1]
    return bool(
        np.all((item[1:] > item[:-1]) | (same_item & (annotator[1:] >= annotator[:-1])))
    )


def _label_column(values: pd.Series) -> pa.Array:
    """The labels as text: a string as it is, any other value as sorted-key JSON. A
    categorical column is converted per category, not per label."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        if len(codes) == 0 or codes.min() >= 0:
            texts = pa.array(_label_texts(values.cat.categories), type=pa.string())
            return texts.take(pa.array(codes))
    return pa.array(_label_texts(values), type=pa.string())


def _label_texts(values: Iterable[Any]) -> list[str]:
    return [
        value if isinstance(value, str) else json.dumps(value, sort_keys=True) for value in values
    ]


def _annotation_table(annotations: pd.DataFrame, key: bytes) -> pa.Table:
    """One row per label, ordered by item, then by annotator as stored (a stable order
    that sorting 5M pseudonym strings would only make slower; pseudonyms differ between
    versions anyway). Built as Arrow columns: the pseudonym and label columns are taken
    from one string per annotator and per label value, not made per label."""
    item = annotations["item_id"].to_numpy(dtype=np.int64)
    annotator = annotations["annotator_id"].to_numpy(dtype=np.int64)
    if not _in_label_order(item, annotator):
        order = np.lexsort((annotator, item))
        annotations = annotations.iloc[order]
        item, annotator = item[order], annotator[order]
    # One HMAC per annotator, not per label.
    annotator_ids, annotator_codes = np.unique(annotator, return_inverse=True)
    pseudonyms = pa.array([pseudonym(key, int(pk)) for pk in annotator_ids], type=pa.string())
    return pa.table(
        {
            "item_id": pa.array(item),
            "annotator": pseudonyms.take(pa.array(annotator_codes)),
            "label": _label_column(annotations["value"]),
            "confidence": pa.array(annotations["confidence"].astype("Int64")),
            "time_spent_ms": pa.array(annotations["time_spent_ms"].astype("Int64")),
        }
    )


def _annotator_table(collected: Collected, survey: Any, key: bytes) -> pd.DataFrame:
    questions = [question.key for question in parse_definition(survey)]
    rows = []
    for annotator_id, answers in zip(
        collected.annotators["annotator_id"], collected.annotators["survey"], strict=True
    ):
        row: dict[str, Any] = {"annotator": pseudonym(key, int(annotator_id))}
        for question in questions:
            answer = (answers or {}).get(question)
            row[question] = (
                None
                if answer is None
                else answer
                if isinstance(answer, str)
                else json.dumps(answer, sort_keys=True)
            )
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["annotator", *questions])
    for question in questions:
        frame[question] = frame[question].astype("string")
    return frame.sort_values("annotator", kind="stable").reset_index(drop=True)


def _license_table(items: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "item_id": items["item_id"].astype("int64"),
            "external_id": items["external_id"].astype(str),
            "license": items["license"].astype(str),
            "attribution": items["attribution"].astype(str),
            "source": items["source"].astype(str),
            "creator": items["creator"].astype(str),
        }
    )
    return _in_item_order(frame)


def _copy_images(items: pd.DataFrame, root: Path) -> Iterable[Path]:
    (root / "images").mkdir(exist_ok=True)
    for sha, name in sorted(zip(items["sha256"], items["image"], strict=True)):
        if not name:
            continue
        target = root / image_path(sha, name)
        if target.exists():
            continue
        with default_storage.open(name, "rb") as source, target.open("wb") as out:
            shutil.copyfileobj(source, out, 1024 * 1024)
        yield target


def bundle_write(
    root: Path,
    *,
    collected: Collected,
    splits: pd.Series,
    targets: Targets,
    recipe: Recipe,
    key: bytes,
    survey: Any,
    image_project: bool,
) -> list[dict[str, Any]]:
    """Write every data file of the bundle under ``root``; returns their manifest
    entries (path, bytes, sha256), sorted by path. ``manifest.json`` is the caller's."""
    written: list[Path] = []
    (root / "data").mkdir(parents=True, exist_ok=True)
    items = _item_table(collected.items, splits, targets, image_project=image_project)
    for split in SPLITS:
        part = items[items["split"] == split].reset_index(drop=True)
        path = root / "data" / f"{split}.parquet"
        engine_files.write_parquet(part, path)
        written.append(path)
        if "jsonl" in recipe.formats:
            engine_files.write_jsonl(part, root / "data" / f"{split}.jsonl")
            written.append(root / "data" / f"{split}.jsonl")
        if "csv" in recipe.formats:
            engine_files.write_csv(part, root / "data" / f"{split}.csv")
            written.append(root / "data" / f"{split}.csv")
    engine_files.write_parquet(
        _annotation_table(collected.annotations, key), root / "annotations.parquet"
    )
    written.append(root / "annotations.parquet")
    engine_files.write_parquet(
        _annotator_table(collected, survey, key), root / "annotators.parquet"
    )
    written.append(root / "annotators.parquet")
    engine_files.write_csv(_license_table(collected.items), root / "licenses.csv")
    written.append(root / "licenses.csv")
    if image_project:
        written.extend(_copy_images(collected.items, root))
    entries = [dict(engine_files.file_entry(path, root)) for path in written]
    return sorted(entries, key=lambda entry: str(entry["path"]))
