"""The bundle's tables: built from Arrow columns, equal to the per-row formulation."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ml.build.bundle import _annotation_table, _soft_label_column, pseudonym
from ml.engine.files import write_parquet

KEY = b"k" * 32


def _annotations(values: list[object]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": [2, 1, 1, 3, 2],
            "annotator_id": [7, 9, 7, 7, 9],
            "value": values,
            "confidence": pd.array([1, None, 3, 4, 5], dtype="Int64"),
            "time_spent_ms": pd.array([10, 20, None, 40, 50], dtype="Int64"),
        }
    )


def _per_row(annotations: pd.DataFrame) -> pa.Table:
    """The table as one row at a time would make it."""
    ordered = annotations.sort_values(["item_id", "annotator_id"], kind="stable")
    frame = pd.DataFrame(
        {
            "item_id": ordered["item_id"].astype("int64"),
            "annotator": [pseudonym(KEY, int(pk)) for pk in ordered["annotator_id"]],
            "label": [
                v if isinstance(v, str) else json.dumps(v, sort_keys=True) for v in ordered["value"]
            ],
            "confidence": ordered["confidence"],
            "time_spent_ms": ordered["time_spent_ms"],
        }
    )
    return pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)


@pytest.mark.parametrize(
    "values",
    [
        pd.Categorical(["b", "a", "b", "c", "a"]),
        ["b", "a", "b", "c", "a"],
        [["x", "y"], {"b": 1, "a": 2}, "plain", None, ["x"]],
    ],
    ids=["categorical", "texts", "json"],
)
def test_annotation_table_rows_sorted_labels_as_text(tmp_path, values):
    annotations = _annotations(values)

    table = _annotation_table(annotations, KEY)

    assert table.column("item_id").to_pylist() == [1, 1, 2, 2, 3]
    # (The per-row frame's texts are large strings: the same Parquet column.)
    assert table.equals(_per_row(annotations).cast(table.schema))
    write_parquet(table, tmp_path / "arrow.parquet")
    write_parquet(_per_row(annotations), tmp_path / "rows.parquet")
    assert (tmp_path / "arrow.parquet").read_bytes() == (tmp_path / "rows.parquet").read_bytes()


def test_soft_label_column_writes_the_bytes_of_python_lists(tmp_path):
    soft = pd.DataFrame([[0.25, 0.75], [np.nan, np.nan], [1.0, 0.0]], columns=["a", "b"])
    as_lists = pd.DataFrame({"soft_label": soft.to_numpy(dtype=float).tolist()})
    as_arrow = pd.DataFrame({"soft_label": _soft_label_column(soft)})
    write_parquet(as_lists, tmp_path / "lists.parquet")
    write_parquet(as_arrow, tmp_path / "arrow.parquet")

    assert (tmp_path / "arrow.parquet").read_bytes() == (tmp_path / "lists.parquet").read_bytes()
    assert as_arrow["soft_label"].tolist()[1] == [None, None]
