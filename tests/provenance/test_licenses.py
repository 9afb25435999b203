"""SPDX license expressions: parsed offline, normalised, and refused with a ValueError only."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provenance.licenses import UNKNOWN, is_valid, parse


@pytest.mark.parametrize(
    ("expression", "normalised"),
    [
        ("CC-BY-4.0", "CC-BY-4.0"),
        ("  MIT  ", "MIT"),
        ("cc-by-nc-sa-4.0", "CC-BY-NC-SA-4.0"),
        ("cc0-1.0", "CC0-1.0"),
        ("mit or apache-2.0", "MIT OR Apache-2.0"),
        ("(MIT OR Apache-2.0) AND CC-BY-4.0", "(MIT OR Apache-2.0) AND CC-BY-4.0"),
        ("GPL-2.0-or-later WITH Classpath-exception-2.0", None),
    ],
)
def test_parse_valid_expression_returns_normalised(expression: str, normalised: str | None) -> None:
    result = parse(expression)
    assert result == (normalised or expression.strip())
    assert is_valid(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "CC-BY-4.0 AND",
        "AND MIT",
        "MIT OR OR Apache-2.0",
        "(MIT",
        "MIT)",
        "()",
        "( )",
        "( or MIT",
        "CC-BY-4.0 WITH",
        "WITH",
        "",
        "   ",
        "MIT AND (",
    ],
)
def test_parse_malformed_expression_raises_value_error(expression: str) -> None:
    with pytest.raises(ValueError):
        parse(expression)
    assert not is_valid(expression)


@pytest.mark.parametrize("expression", ["Foo-License-9.9", "CC-BY-4.0 AND NotALicense", "BSD"])
def test_parse_unknown_license_id_raises_value_error(expression: str) -> None:
    with pytest.raises(ValueError, match="Invalid license expression|Malformed"):
        parse(expression)


def test_parse_license_ref_unregistered_rejected() -> None:
    with pytest.raises(ValueError):
        parse("LicenseRef-Museum-Terms")


def test_parse_license_ref_registered_via_custom_refs_accepted() -> None:
    refs = ["LicenseRef-Museum-Terms"]
    assert parse("LicenseRef-Museum-Terms", custom_refs=refs) == "LicenseRef-Museum-Terms"
    assert (
        parse("CC-BY-4.0 OR LicenseRef-Museum-Terms", custom_refs=refs)
        == "CC-BY-4.0 OR LicenseRef-Museum-Terms"
    )
    # Registering one reference does not open the door to others.
    with pytest.raises(ValueError):
        parse("LicenseRef-Other", custom_refs=refs)


@pytest.mark.parametrize("ref", ["Museum-Terms", "LicenseRef-", "LicenseRef-has space"])
def test_parse_malformed_custom_ref_raises_value_error(ref: str) -> None:
    with pytest.raises(ValueError, match="LicenseRef"):
        parse("MIT", custom_refs=[ref])


@pytest.mark.parametrize("expression", ["NOASSERTION", "noassertion", " NoAssertion "])
def test_parse_noassertion_kept_as_unknown(expression: str) -> None:
    assert parse(expression) == UNKNOWN


_TOKENS = st.sampled_from(
    ["MIT", "cc-by-4.0", "Apache-2.0", "AND", "OR", "WITH", "(", ")", "+", "LicenseRef-x", " "]
)


@given(expression=st.one_of(st.text(max_size=60), st.lists(_TOKENS, max_size=8).map(" ".join)))
def test_parse_any_input_returns_text_or_raises_value_error_only(expression: str) -> None:
    try:
        result = parse(expression)
    except ValueError:
        return
    assert result
    # A normalised expression is a fixed point.
    assert parse(result) == result
