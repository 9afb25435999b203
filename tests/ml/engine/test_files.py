"""Bundle files: byte-identical Parquet without a writer version, JSON Lines, defused CSV,
manifest entries."""

import csv
import hashlib
import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.engine.files import (
    NEUTRAL_CREATED_BY,
    PARQUET_OPTIONS,
    file_entry,
    sha256_file,
    write_csv,
    write_jsonl,
    write_parquet,
)


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": pd.array([3, 1, 2], dtype="int64"),
            "text": pd.array(["ünïcode ☺", None, "=HYPERLINK()"], dtype="string"),
            "label": ["private", "public", None],
            "soft": [[0.25, 0.75], [1.0, 0.0], []],
            "weight": [0.1, float("nan"), 1e-20],
            "control": [True, False, True],
        }
    )


def test_write_parquet_twice_gives_identical_bytes(tmp_path):
    write_parquet(_frame(), tmp_path / "a.parquet")
    write_parquet(_frame(), tmp_path / "b.parquet")

    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert sha256_file(tmp_path / "a.parquet") == sha256_file(tmp_path / "b.parquet")


def test_write_parquet_different_rows_give_different_bytes(tmp_path):
    write_parquet(_frame(), tmp_path / "a.parquet")
    write_parquet(_frame().iloc[::-1], tmp_path / "b.parquet")

    assert sha256_file(tmp_path / "a.parquet") != sha256_file(tmp_path / "b.parquet")


def test_write_parquet_holds_no_writer_version(tmp_path):
    path = tmp_path / "a.parquet"
    write_parquet(_frame(), path)

    data = path.read_bytes()
    assert pa.__version__.encode() not in data
    assert b"parquet-cpp" not in data
    assert pq.ParquetFile(path).metadata.created_by == NEUTRAL_CREATED_BY


def test_write_parquet_holds_no_pandas_or_arrow_schema_metadata(tmp_path):
    path = tmp_path / "a.parquet"
    write_parquet(_frame(), path)

    assert pq.ParquetFile(path).metadata.metadata is None
    assert b"pandas" not in path.read_bytes()


def test_write_parquet_reads_back_equal(tmp_path):
    path = tmp_path / "a.parquet"
    write_parquet(_frame(), path)

    read = pq.read_table(path).to_pandas()
    expected = _frame()
    assert read["item_id"].tolist() == [3, 1, 2]
    assert read["text"].tolist()[0] == "ünïcode ☺" and pd.isna(read["text"][1])
    assert read["label"].tolist()[:2] == ["private", "public"] and pd.isna(read["label"][2])
    assert read["control"].tolist() == expected["control"].tolist()
    assert read["weight"][0] == 0.1 and math.isnan(read["weight"][1]) and read["weight"][2] == 1e-20


def test_write_parquet_soft_label_lists_survive_as_list_of_float64(tmp_path):
    path = tmp_path / "a.parquet"
    schema = pa.schema([("item_id", pa.int64()), ("soft", pa.list_(pa.float64()))])
    write_parquet(
        pd.DataFrame({"item_id": [1, 2, 3], "soft": [[0.1, 0.2, 0.7], [1.0], []]}),
        path,
        schema=schema,
    )

    read = pq.read_table(path)
    assert pa.types.is_list(read.schema.field("soft").type)
    assert read.schema.field("soft").type.value_type == pa.float64()
    assert read.column("soft").to_pylist() == [[0.1, 0.2, 0.7], [1.0], []]


def test_write_parquet_schema_fixes_column_order_and_types(tmp_path):
    path = tmp_path / "a.parquet"
    schema = pa.schema([("b", pa.int32()), ("a", pa.string())])
    write_parquet(pa.table({"a": ["x", "y"], "b": [1, 2], "dropped": [0, 0]}), path, schema=schema)

    read = pq.read_table(path)
    assert read.schema.names == ["b", "a"]
    assert read.schema.field("b").type == pa.int32()


def test_write_parquet_nan_in_arrow_table_round_trips(tmp_path):
    # Arrow's equals() says NaN != NaN; the check must still accept the file.
    path = tmp_path / "a.parquet"
    write_parquet(pa.table({"x": pa.array([float("nan"), 1.0])}), path)

    assert math.isnan(pq.read_table(path).column("x")[0].as_py())


def test_write_parquet_empty_frame_writes_valid_file(tmp_path):
    path = tmp_path / "a.parquet"
    write_parquet(pd.DataFrame({"item_id": pd.array([], dtype="int64")}), path)

    assert pq.read_table(path).num_rows == 0
    assert pq.ParquetFile(path).metadata.created_by == NEUTRAL_CREATED_BY


def test_write_parquet_cell_holding_the_writer_string_is_untouched(tmp_path):
    # The writer's own created_by text as data, so it also sits in the column statistics.
    created_by = f"parquet-cpp-arrow version {pa.__version__}"
    path = tmp_path / "a.parquet"
    write_parquet(pd.DataFrame({"text": [created_by, created_by]}), path)

    metadata = pq.ParquetFile(path).metadata
    assert metadata.created_by == NEUTRAL_CREATED_BY
    assert metadata.row_group(0).column(0).statistics.max == created_by
    assert pq.read_table(path).column("text").to_pylist() == [created_by, created_by]


def test_write_parquet_same_rows_in_other_chunks_give_identical_bytes(tmp_path):
    # Over a data page (1 MiB) of distinct texts: pyarrow cuts pages at chunk ends.
    count = 20_000
    words = pa.array(
        [f"{n * 7919 % 100003:06d} text number {n} " * 3 for n in range(count)],
        type=pa.large_string(),
    )
    whole = pa.table({"text": words})
    pieces = pa.chunked_array([words.slice(start, 1537) for start in range(0, count, 1537)])
    chunked = pa.table({"text": pieces})
    write_parquet(whole, tmp_path / "a.parquet")
    write_parquet(chunked, tmp_path / "b.parquet")

    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_write_parquet_several_row_groups_with_nan_round_trip(tmp_path, monkeypatch):
    # The proof reads one row group at a time; a NaN in a later group must pass it too.
    monkeypatch.setitem(PARQUET_OPTIONS, "row_group_size", 100)
    values = [float(n) for n in range(250)]
    values[180] = float("nan")
    path = tmp_path / "a.parquet"
    write_parquet(pa.table({"x": pa.array(values)}), path)

    assert pq.ParquetFile(path).num_row_groups == 3
    read = pq.read_table(path).column("x").to_pylist()
    assert math.isnan(read[180]) and read[:180] == values[:180] and read[181:] == values[181:]


def test_write_parquet_options_pin_the_byte_relevant_defaults():
    assert PARQUET_OPTIONS["compression"] == "zstd"
    assert PARQUET_OPTIONS["store_schema"] is False
    assert isinstance(PARQUET_OPTIONS["row_group_size"], int)


def test_write_jsonl_keys_in_column_order_utf8_and_nulls(tmp_path):
    path = tmp_path / "a.jsonl"
    write_jsonl(_frame(), path)

    data = path.read_bytes()
    lines = data.decode("utf-8").split("\n")
    assert lines[-1] == "" and b"\r" not in data
    first = json.loads(lines[0])
    assert list(first) == ["item_id", "text", "label", "soft", "weight", "control"]
    assert "ünïcode ☺" in lines[0]  # not \u-escaped
    assert json.loads(lines[1])["text"] is None
    assert json.loads(lines[1])["weight"] is None  # NaN
    assert lines[2].endswith('"weight":1e-20,"control":true}')
    assert first["soft"] == [0.25, 0.75]


def test_write_jsonl_mappings_sorted_keys_and_numpy_values(tmp_path):
    path = tmp_path / "a.jsonl"
    write_jsonl([{"b": np.int64(2), "a": np.array([0.5, np.nan]), "c": {"z": 1, "y": pd.NA}}], path)

    assert path.read_text(encoding="utf-8") == '{"a":[0.5,null],"b":2,"c":{"y":null,"z":1}}\n'


def test_write_jsonl_columns_select_and_order(tmp_path):
    path = tmp_path / "a.jsonl"
    write_jsonl([{"a": 1, "b": 2}], path, columns=["b", "a"])

    assert path.read_text(encoding="utf-8") == '{"b":2,"a":1}\n'


def test_write_jsonl_floats_as_repr(tmp_path):
    path = tmp_path / "a.jsonl"
    values = [0.1, 1 / 3, 1e300, -0.0, 2.0]
    write_jsonl(pd.DataFrame({"x": values}), path)

    written = [line.split(":", 1)[1].rstrip("}") for line in path.read_text().splitlines()]
    assert written == [repr(v) for v in values]


@pytest.mark.parametrize(
    ("rows", "message"),
    [([{"x": float("inf")}], "no JSON form"), ([{"x": object()}], "no JSON form")],
)
def test_write_jsonl_unrepresentable_value_raises(tmp_path, rows, message):
    with pytest.raises(ValueError, match=message):
        write_jsonl(rows, tmp_path / "a.jsonl")


def test_write_jsonl_row_with_other_keys_raises(tmp_path):
    with pytest.raises(ValueError, match="not the columns"):
        write_jsonl([{"a": 1}, {"b": 1}], tmp_path / "a.jsonl", columns=["a"])


def test_write_jsonl_empty_input_writes_empty_file(tmp_path):
    write_jsonl([], tmp_path / "a.jsonl")

    assert (tmp_path / "a.jsonl").read_bytes() == b""


def test_write_csv_defuses_formula_injection_and_keeps_numbers(tmp_path):
    path = tmp_path / "a.csv"
    frame = pd.DataFrame(
        {
            "=cmd": ["=1+1", "+SUM(A1)", "-2", "@x", "\tTAB", "plain"],
            "n": pd.array([-1, 2, 3, 4, 5, 6], dtype="int64"),
            "f": [-0.5, float("nan"), 1e-20, 0.1, 2.0, 3.0],
            "maybe": [None, "ok", None, "ok", None, "ok"],
        }
    )
    write_csv(frame, path)

    data = path.read_bytes()
    assert b"\r\n" not in data and data.endswith(b"\n")
    rows = list(csv.reader(data.decode("utf-8").splitlines()))
    assert rows[0] == ["'=cmd", "n", "f", "maybe"]
    assert [row[0] for row in rows[1:]] == ["'=1+1", "'+SUM(A1)", "'-2", "'@x", "'\tTAB", "plain"]
    assert [row[1] for row in rows[1:]] == ["-1", "2", "3", "4", "5", "6"]
    assert [row[2] for row in rows[1:]] == ["-0.5", "", "1e-20", "0.1", "2.0", "3.0"]
    assert rows[1][3] == ""


def test_write_csv_text_columns_written_as_object_columns_are(tmp_path):
    # Text columns are defused once per distinct value; the cells must be those of the
    # same values in an object column, defused one by one.
    values = ["=1+1", "", "plain", "=1+1", None, "-2", "a,b", 'say "x"', "plain", "ünï"]
    numbers = {
        "n": list(range(-5, 5)),
        "maybe": pd.array([1, None, 3, 4, 5, 6, 7, 8, 9, 10], dtype="Int64"),
    }
    as_text = pd.DataFrame({"t": pd.array(values, dtype="str"), **numbers})
    as_string = pd.DataFrame({"t": pd.array(values, dtype="string"), **numbers})
    as_objects = pd.DataFrame({"t": pd.Series(values, dtype=object), **numbers})
    for name, frame in (("text", as_text), ("string", as_string), ("objects", as_objects)):
        write_csv(frame, tmp_path / f"{name}.csv")

    expected = (tmp_path / "objects.csv").read_bytes()
    assert (tmp_path / "text.csv").read_bytes() == expected
    assert (tmp_path / "string.csv").read_bytes() == expected
    assert expected.splitlines()[1:4] == [b"'=1+1,-5,1", b",-4,", b"plain,-3,3"]


def test_write_csv_lists_are_compact_json(tmp_path):
    path = tmp_path / "a.csv"
    write_csv(pd.DataFrame({"soft": [[0.25, 0.75]], "vector": [np.array([1.0, 2.0])]}), path)

    assert path.read_text(encoding="utf-8") == 'soft,vector\n"[0.25,0.75]","[1.0,2.0]"\n'


def test_write_csv_twice_gives_identical_bytes(tmp_path):
    write_csv(_frame(), tmp_path / "a.csv")
    write_csv(_frame(), tmp_path / "b.csv")

    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_sha256_file_matches_hashlib(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 3_000_000)

    assert sha256_file(path) == hashlib.sha256(b"x" * 3_000_000).hexdigest()


def test_file_entry_relative_posix_path_size_and_hash(tmp_path):
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "train.csv"
    path.write_bytes(b"a\n")

    assert file_entry(path, tmp_path) == {
        "path": "data/train.csv",
        "bytes": 2,
        "sha256": hashlib.sha256(b"a\n").hexdigest(),
    }


def test_file_entry_outside_root_raises(tmp_path):
    (tmp_path / "root").mkdir()
    outside = tmp_path / "elsewhere"
    outside.write_bytes(b"")

    with pytest.raises(ValueError, match="not under"):
        file_entry(outside, tmp_path / "root")
