"""SPDX license expressions: parsing and normalisation.

A pure module (no database): the rules can be used and tested alone. Built on
``license-expression`` and its bundled, offline SPDX index.
"""

import functools
import re
from collections.abc import Iterable

from license_expression import LicenseSymbol, Licensing, get_spdx_licensing

# SPDX's own words for "the license is not known": kept as is, reported as unknown.
UNKNOWN = "NOASSERTION"
LICENSE_REF = re.compile(r"^LicenseRef-[A-Za-z0-9.\-]+$")


@functools.cache
def _spdx() -> Licensing:
    return get_spdx_licensing()


@functools.cache
def _licensing_with(custom_refs: frozenset[str]) -> Licensing:
    symbols = list(_spdx().known_symbols.values()) + [LicenseSymbol(ref) for ref in custom_refs]
    return Licensing(symbols=symbols)


def parse(expression: str, *, custom_refs: Iterable[str] = ()) -> str:
    """Return the normalised SPDX expression, or raise ``ValueError`` saying what is wrong.

    Case is normalised (``cc-by-nc-sa-4.0`` becomes ``CC-BY-NC-SA-4.0``). ``LicenseRef-``
    identifiers are accepted only when listed in ``custom_refs`` (the registered catalogue).
    """
    text = (expression or "").strip()
    if not text:
        raise ValueError("License expression is empty.")
    if text.upper() == UNKNOWN:
        return UNKNOWN
    refs = frozenset(custom_refs)
    for ref in refs:
        if not LICENSE_REF.match(ref):
            raise ValueError(f"{ref!r} is not a valid LicenseRef identifier.")
    licensing = _licensing_with(refs) if refs else _spdx()
    try:
        info = licensing.validate(text)
    except Exception as error:
        # license-expression and boolean.py raise assorted errors from inside their own
        # parsers on malformed input (IndexError for "()", AttributeError for a trailing
        # operator, AssertionError for "( or MIT"); every one of them means "malformed".
        raise ValueError(f"Malformed license expression {text!r}.") from error
    if info.errors:
        raise ValueError(f"Invalid license expression {text!r}: {'; '.join(info.errors)}.")
    if not info.normalized_expression:
        raise ValueError(f"Malformed license expression {text!r}.")
    return str(info.normalized_expression)


def is_valid(expression: str, *, custom_refs: Iterable[str] = ()) -> bool:
    try:
        parse(expression, custom_refs=custom_refs)
    except ValueError:
        return False
    return True
