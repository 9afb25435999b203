"""CSV output that spreadsheets cannot turn into formulas.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab, a carriage return or a NUL may be
run as a formula when the file is opened in a spreadsheet (OWASP "CSV Injection"). Every
text cell that starts so gets a leading ``'``, which spreadsheets show as text. Numbers are
written as numbers: Python renders an ``int`` or ``float`` only as digits, a sign, a point
and an exponent, which no spreadsheet reads as a formula.

Everything that writes CSV for people to open (analysis tables, auditor reports) goes
through ``csv_lines`` or ``csv_text``.
"""

import csv
import io
import itertools
import json
import math
from collections.abc import Iterable, Iterator, Sequence

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\0")


def safe_cell(value: object) -> str | int | float:
    """One cell as written: text defused with a leading ``'``, numbers as they are.

    ``None`` (and a NaN) is an empty cell; a list or dict is written as compact JSON text.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return "" if math.isnan(value) else value
    if isinstance(value, (list, dict)):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    else:
        text = str(value)
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def csv_lines(*, header: Sequence[object], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    """The header and then each row as one CSV line (``\\r\\n`` ended), every cell defused.

    A generator, so a long table can be streamed without holding it in memory.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in itertools.chain((header,), rows):
        writer.writerow([safe_cell(value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def csv_text(*, header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """The whole table as one CSV string; see ``csv_lines``."""
    return "".join(csv_lines(header=header, rows=rows))
