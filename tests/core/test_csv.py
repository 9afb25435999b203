"""CSV cells cannot become spreadsheet formulas (OWASP CSV injection)."""

import csv
import io

import pytest

from core.csv import FORMULA_PREFIXES, csv_lines, csv_text, safe_cell


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
def test_safe_cell_formula_prefix_defused_with_quote(prefix):
    assert safe_cell(f'{prefix}HYPERLINK("http://evil")') == f'\'{prefix}HYPERLINK("http://evil")'


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("plain text", "plain text"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (3, 3),
        (-0.5, -0.5),
        (float("nan"), ""),
        (True, "true"),
        ({"=x": 1}, '{"=x":1}'),
        (["-1"], '["-1"]'),
    ],
)
def test_safe_cell_other_values_written_as_expected(value, written):
    assert safe_cell(value) == written


def test_csv_text_header_and_rows_defused_and_parseable():
    text = csv_text(
        header=["id", "=name"],
        rows=[[1, "=1+1"], [2, "@SUM(A1)"], [3, "line\nbreak, comma"]],
    )

    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed == [
        ["id", "'=name"],
        ["1", "'=1+1"],
        ["2", "'@SUM(A1)"],
        ["3", "line\nbreak, comma"],
    ]


def test_csv_lines_one_line_per_row_lazily():
    def rows():
        yield ["a"]
        raise AssertionError("read past the first row")

    lines = csv_lines(header=["h"], rows=rows())

    assert next(lines) == "h\r\n"
    assert next(lines) == "a\r\n"
