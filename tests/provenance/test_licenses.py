"""SPDX license expressions: parsed offline, normalised, and refused with a ValueError only;
classified from the seeded catalogue; combined by the Creative Commons rules."""

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provenance.licenses import (
    CATALOGUE_COLUMNS,
    INTENDED_USES,
    PERMISSIVE,
    RULES,
    UNKNOWN,
    UNSPECIFIED,
    USES,
    CatalogueEntry,
    LicenseClass,
    LicenseTable,
    attribution_text,
    check_use,
    classify,
    combine,
    is_valid,
    parse,
    read_catalogue,
    seed_entries,
    seed_table,
    unclassified_ids,
)


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
        "MIT OR",
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


# --- Parsing against the catalogue ---------------------------------------------------------

MUSEUM_REF = "LicenseRef-Museum-Terms"
ACADEMIC_REF = "LicenseRef-Academic-Research"


def _entry(spdx_id: str, use: str = "commercial", **flags: bool) -> CatalogueEntry:
    return CatalogueEntry(
        spdx_id=spdx_id,
        name=spdx_id,
        use=use,  # type: ignore[arg-type]  # the catalogue's own check is what is tested
        attribution=flags.get("attribution", True),
        share_alike=flags.get("share_alike", False),
        no_derivatives=flags.get("no_derivatives", False),
        terms_url=flags.get("with_terms", True) and f"https://terms.example.org/{spdx_id}" or "",
    )


def _table_with(*extra: CatalogueEntry) -> LicenseTable:
    """The seeded catalogue plus rows a member of staff added."""
    replaced = {entry.spdx_id for entry in extra}
    return LicenseTable(
        [entry for entry in seed_entries() if entry.spdx_id not in replaced] + list(extra)
    )


def test_parse_license_ref_registered_in_table_accepted() -> None:
    table = _table_with(_entry(MUSEUM_REF))
    assert parse("licenseref-museum-terms AND cc-by-4.0", table=table) == (
        f"{MUSEUM_REF} AND CC-BY-4.0"
    )
    assert is_valid(MUSEUM_REF, table=table)


def test_parse_license_ref_in_table_without_terms_url_rejected() -> None:
    table = _table_with(_entry(MUSEUM_REF, with_terms=False))
    with pytest.raises(ValueError, match="without the URL of its terms"):
        parse(MUSEUM_REF, table=table)


@pytest.mark.parametrize(
    "expression",
    # Ids the library's own index knows (a ScanCode key, an alias of MIT) are still refs.
    ["LicenseRef-Museum-Terms", "LicenseRef-scancode-biosl-4.0", "MIT OR LicenseRef-MIT-Bootstrap"],
)
def test_parse_license_ref_unregistered_rejected_with_clear_message(expression: str) -> None:
    with pytest.raises(ValueError, match="not registered in the license catalogue"):
        parse(expression)


def test_parse_with_exception_normalised() -> None:
    assert (
        parse("gpl-2.0-or-later with classpath-exception-2.0")
        == "GPL-2.0-or-later WITH Classpath-exception-2.0"
    )


def test_parse_exception_alone_raises_value_error() -> None:
    with pytest.raises(ValueError, match="Invalid license expression"):
        parse("Classpath-exception-2.0")


# --- The seeded catalogue ------------------------------------------------------------------

# Expected classes, written out independently of the CSV: (use, attribution, share_alike,
# no_derivatives). Creative Commons classes follow the license elements of each version.
_CC_ELEMENTS = {
    "CC-BY": ("commercial", True, False, False),
    "CC-BY-SA": ("commercial", True, True, False),
    "CC-BY-NC": ("non-commercial", True, False, False),
    "CC-BY-NC-SA": ("non-commercial", True, True, False),
    "CC-BY-ND": ("commercial", True, False, True),
    "CC-BY-NC-ND": ("non-commercial", True, False, True),
}
_CC_VERSIONS = {
    "CC-BY": ["1.0", "2.0", "2.5", "2.5-AU", "3.0", "3.0-AT", "3.0-AU", "3.0-DE", "3.0-IGO"]
    + ["3.0-NL", "3.0-US", "4.0"],
    "CC-BY-SA": ["1.0", "2.0", "2.0-UK", "2.1-JP", "2.5", "3.0", "3.0-AT", "3.0-DE", "3.0-IGO"]
    + ["4.0"],
    "CC-BY-NC": ["1.0", "2.0", "2.5", "3.0", "3.0-DE", "4.0"],
    "CC-BY-NC-SA": ["1.0", "2.0", "2.0-DE", "2.0-FR", "2.0-UK", "2.5", "3.0", "3.0-DE"]
    + ["3.0-IGO", "4.0"],
    "CC-BY-ND": ["1.0", "2.0", "2.5", "3.0", "3.0-DE", "4.0"],
    "CC-BY-NC-ND": ["1.0", "2.0", "2.5", "3.0", "3.0-DE", "3.0-IGO", "4.0"],
}
_COPYLEFT = ("commercial", True, True, False)
_NOTICE = ("commercial", True, False, False)
_FREE = ("commercial", False, False, False)
EXPECTED_CLASSES: dict[str, tuple[str, bool, bool, bool]] = {
    **{
        f"{family}-{version}": _CC_ELEMENTS[family]
        for family, versions in _CC_VERSIONS.items()
        for version in versions
    },
    "CC0-1.0": _FREE,
    "PDDL-1.0": _FREE,
    "Unlicense": _FREE,
    "ODC-By-1.0": _NOTICE,
    "ODbL-1.0": _COPYLEFT,
    "CDLA-Permissive-1.0": _NOTICE,
    "CDLA-Permissive-2.0": _NOTICE,
    "CDLA-Sharing-1.0": _COPYLEFT,
    "C-UDA-1.0": _COPYLEFT,
    "O-UDA-1.0": _NOTICE,
    "MIT": _NOTICE,
    "Apache-2.0": _NOTICE,
    "BSD-2-Clause": _NOTICE,
    "BSD-3-Clause": _NOTICE,
    **{
        f"{family}-{version}-{scope}": _COPYLEFT
        for family, versions in {
            "GPL": ["2.0", "3.0"],
            "LGPL": ["2.0", "2.1", "3.0"],
            "AGPL": ["3.0"],
        }.items()
        for version in versions
        for scope in ("only", "or-later")
    },
    UNKNOWN: ("unspecified", False, False, False),
}
_TERMS_HOSTS = (
    "https://creativecommons.org/",
    "https://opendatacommons.org/",
    "https://cdla.dev/",
    "https://spdx.org/licenses/",
    "https://spdx.github.io/spdx-spec/",
)


def test_seed_entries_cover_exactly_the_expected_licenses() -> None:
    assert sorted(entry.spdx_id for entry in seed_entries()) == sorted(EXPECTED_CLASSES)


@pytest.mark.parametrize("entry", seed_entries(), ids=lambda entry: entry.spdx_id)
def test_seed_entry_class_matches_expectation(entry: CatalogueEntry) -> None:
    assert entry.license_class == LicenseClass(*EXPECTED_CLASSES[entry.spdx_id])  # type: ignore[arg-type]
    assert classify(entry.spdx_id) == entry.license_class


@pytest.mark.parametrize("entry", seed_entries(), ids=lambda entry: entry.spdx_id)
def test_seed_entry_id_parses_to_itself_and_cites_sources(entry: CatalogueEntry) -> None:
    assert parse(entry.spdx_id) == entry.spdx_id
    assert unclassified_ids(entry.spdx_id) == ()
    assert entry.name
    assert entry.terms_url.startswith(_TERMS_HOSTS)
    assert entry.source_url.startswith("https://")
    assert entry.notes


def test_seed_entry_c_uda_commercial_with_rationale() -> None:
    c_uda = seed_table().get("C-UDA-1.0")
    assert c_uda is not None
    assert c_uda.use == "commercial"
    assert "Data Provenance Initiative" in c_uda.notes
    assert "academic-only" in c_uda.notes


def test_seed_csv_columns_match_catalogue_entry_fields() -> None:
    header = (Path(__file__).parents[2] / "provenance/data/license_classes.csv").read_text(
        encoding="utf-8"
    )
    assert tuple(header.splitlines()[0].split(",")) == CATALOGUE_COLUMNS
    assert CATALOGUE_COLUMNS == (
        "spdx_id",
        "name",
        "use",
        "attribution",
        "share_alike",
        "no_derivatives",
        "terms_url",
        "source_url",
        "notes",
    )


def test_read_catalogue_bad_boolean_raises_value_error_naming_line(tmp_path: Path) -> None:
    path = tmp_path / "classes.csv"
    path.write_text(
        ",".join(CATALOGUE_COLUMNS) + "\nMIT,MIT License,commercial,yes,false,false,,,\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="Line 2: attribution"):
        read_catalogue(path)


def test_read_catalogue_wrong_columns_raises_value_error(tmp_path: Path) -> None:
    path = tmp_path / "classes.csv"
    path.write_text("spdx_id,use\nMIT,commercial\n", encoding="utf-8")
    with pytest.raises(ValueError, match="columns"):
        read_catalogue(path)


def test_catalogue_entry_unknown_use_raises_value_error() -> None:
    with pytest.raises(ValueError, match="not one of"):
        _entry("MIT", use="free-for-all")


def test_license_table_normalises_ids() -> None:
    table = LicenseTable([_entry("cc-by-4.0"), _entry("licenseref-Museum-Terms")])
    assert "CC-BY-4.0" in table
    assert MUSEUM_REF in table
    assert table.custom_refs == frozenset({MUSEUM_REF})
    assert table.terms_url(MUSEUM_REF) == "https://terms.example.org/licenseref-Museum-Terms"
    assert parse("LICENSEREF-MUSEUM-TERMS", table=table) == MUSEUM_REF


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([_entry("MIT"), _entry("mit")], "twice"),
        ([_entry("MIT OR Apache-2.0")], "not a single license id"),
        ([_entry("Not-A-License")], "Invalid license expression"),
        ([_entry("LicenseRef-has space")], "LicenseRef"),
    ],
)
def test_license_table_bad_rows_raise_value_error(
    entries: list[CatalogueEntry], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        LicenseTable(entries)


# --- Classification ------------------------------------------------------------------------

BY = classify("CC-BY-4.0")
BY_SA = classify("CC-BY-SA-4.0")
BY_NC = classify("CC-BY-NC-4.0")
BY_NC_SA = classify("CC-BY-NC-SA-4.0")


def test_classify_and_takes_most_restrictive_per_axis() -> None:
    assert classify("CC-BY-SA-4.0 AND CC-BY-NC-4.0") == LicenseClass(
        "non-commercial", attribution=True, share_alike=True, no_derivatives=False
    )


def test_classify_or_takes_least_restrictive_alternative() -> None:
    assert classify("CC-BY-NC-4.0 OR CC-BY-4.0") == BY
    assert classify("CC0-1.0 OR MIT") == PERMISSIVE


def test_classify_or_takes_one_alternative_whole_never_mixing_axes() -> None:
    # Use comes first: BY-SA (commercial, share-alike) beats BY-NC; its share-alike comes along.
    assert classify("CC-BY-NC-4.0 OR CC-BY-SA-4.0") == BY_SA


def test_classify_with_exception_uses_base_license() -> None:
    assert classify("GPL-2.0-or-later WITH Classpath-exception-2.0") == classify("GPL-2.0-or-later")


def test_classify_lowercase_hugging_face_id_normalised() -> None:
    assert classify("cc-by-nc-sa-4.0") == BY_NC_SA


def test_classify_unclassified_id_unspecified_and_reported() -> None:
    assert classify("Zlib") == UNSPECIFIED
    assert unclassified_ids("Zlib AND (MIT OR bsd-3-clause)") == ("Zlib",)
    # An alternative keeps the expression usable; the unclassified id is still reported.
    assert classify("MIT OR Zlib") == classify("MIT")
    assert unclassified_ids("MIT OR Zlib") == ("Zlib",)


def test_classify_noassertion_unspecified() -> None:
    assert classify("noassertion") == UNSPECIFIED
    assert unclassified_ids(UNKNOWN) == ()


def test_classify_registered_license_ref_uses_its_row() -> None:
    table = _table_with(_entry(ACADEMIC_REF, use="academic-only"))
    assert classify(ACADEMIC_REF, table=table).use == "academic-only"


def test_classify_staff_edited_table_overrides_seed() -> None:
    table = _table_with(_entry("CC-BY-4.0", use="non-commercial"))
    assert classify("CC-BY-4.0", table=table).use == "non-commercial"


@pytest.mark.parametrize("expression", ["CC-BY-4.0 AND", "", "Foo-1.0", "LicenseRef-Nope"])
def test_classify_invalid_expression_raises_value_error(expression: str) -> None:
    with pytest.raises(ValueError):
        classify(expression)


def test_combine_most_restrictive_use_wins_and_flags_propagate() -> None:
    assert combine(["CC0-1.0", "CC-BY-SA-4.0", "CC-BY-NC-4.0", "CC-BY-ND-4.0"]) == LicenseClass(
        "non-commercial", attribution=True, share_alike=True, no_derivatives=True
    )


def test_combine_unknown_or_blank_item_makes_set_unspecified() -> None:
    assert combine(["CC-BY-4.0", "NOASSERTION"]).use == "unspecified"
    assert combine(["CC-BY-4.0", ""]).use == "unspecified"


def test_combine_empty_set_permissive() -> None:
    assert combine([]) == PERMISSIVE


# --- check_use: one test per rule ----------------------------------------------------------


def _rules(verdict_blocking: tuple) -> set[tuple[str, str]]:
    return {(blocker.expression, blocker.rule) for blocker in verdict_blocking}


def test_check_use_commercial_non_commercial_item_blocked() -> None:
    verdict = check_use(["CC-BY-4.0", "CC-BY-NC-4.0"], "commercial")
    assert not verdict.allowed
    assert _rules(verdict.blocking) == {("CC-BY-NC-4.0", "use-non-commercial")}


def test_check_use_commercial_academic_only_item_blocked() -> None:
    table = _table_with(_entry(ACADEMIC_REF, use="academic-only"))
    verdict = check_use(["MIT", ACADEMIC_REF], "commercial", table=table)
    assert _rules(verdict.blocking) == {(ACADEMIC_REF, "use-academic-only")}


def test_check_use_commercial_permissive_items_allowed_with_obligations() -> None:
    verdict = check_use(["CC0-1.0", "CC-BY-4.0", "CC-BY-4.0", "CC-BY-SA-4.0"], "commercial")
    assert verdict.allowed
    assert verdict.blocking == ()
    assert any(line.startswith("Credit 3 item(s)") for line in verdict.obligations)
    assert any("1 share-alike item(s)" in line for line in verdict.obligations)
    assert verdict.resulting_class is None


@pytest.mark.parametrize("intended_use", INTENDED_USES)
@pytest.mark.parametrize("expression", ["NOASSERTION", "", "Zlib"])
def test_check_use_unknown_license_blocks_every_use(expression: str, intended_use: str) -> None:
    verdict = check_use(["CC-BY-4.0", expression], intended_use)
    assert not verdict.allowed
    assert _rules(verdict.blocking) == {(expression, "use-unspecified")}


def test_check_use_unclassified_id_message_names_it() -> None:
    (blocker,) = check_use(["Zlib"], "research").blocking
    assert "Zlib" in blocker.message
    assert "catalogue" in blocker.message


@pytest.mark.parametrize("expression", ["CC-BY-4.0 AND", "LicenseRef-Unregistered"])
def test_check_use_invalid_expression_blocked_not_raised(expression: str) -> None:
    verdict = check_use([expression, "MIT"], "research")
    assert _rules(verdict.blocking) == {(expression, "invalid-license")}
    assert verdict.blocking[0].message


def test_check_use_research_non_commercial_and_academic_allowed() -> None:
    table = _table_with(_entry(ACADEMIC_REF, use="academic-only"))
    verdict = check_use(
        ["CC-BY-NC-4.0", "CC-BY-NC-ND-4.0", ACADEMIC_REF, "MIT"], "research", table=table
    )
    assert verdict.allowed
    assert "Keep the use of 2 item(s) non-commercial." in verdict.obligations
    assert "Use 1 item(s) for academic research only." in verdict.obligations


def test_check_use_collection_no_derivatives_allowed_with_obligations() -> None:
    verdict = check_use(
        ["CC-BY-ND-4.0", "CC-BY-NC-4.0", "CC-BY-SA-4.0", "CC0-1.0"], "redistribute-as-collection"
    )
    assert verdict.allowed
    assert verdict.obligations == (
        "Credit 3 item(s) whose license requires attribution (title, creator, source, license).",
        "Keep each item's license and attribution with the item.",
        "Redistribute 1 item(s) non-commercially only.",
        "Keep 1 share-alike item(s) under their own license.",
        "Redistribute 1 no-derivatives item(s) unmodified.",
    )


def test_check_use_train_model_no_derivatives_blocked() -> None:
    verdict = check_use(["CC-BY-4.0", "CC-BY-NC-ND-4.0"], "train-model")
    assert _rules(verdict.blocking) == {("CC-BY-NC-ND-4.0", "no-derivatives")}


def test_check_use_train_model_by_sa_with_by_nc_blocked() -> None:
    verdict = check_use(["CC-BY-SA-4.0", "CC-BY-NC-4.0"], "train-model")
    (blocker,) = verdict.blocking
    assert (blocker.expression, blocker.rule) == ("CC-BY-NC-4.0", "share-alike-use-conflict")
    assert blocker.conflicts_with == "CC-BY-SA-4.0"
    assert verdict.resulting_license is None


def test_check_use_train_model_by_sa_with_by_nc_sa_blocked() -> None:
    verdict = check_use(["CC-BY-SA-4.0", "CC-BY-NC-SA-4.0"], "train-model")
    assert _rules(verdict.blocking) == {
        ("CC-BY-SA-4.0", "share-alike-license-conflict"),
        ("CC-BY-NC-SA-4.0", "share-alike-use-conflict"),
    }
    conflict = next(b for b in verdict.blocking if b.rule == "share-alike-license-conflict")
    assert conflict.conflicts_with == "CC-BY-NC-SA-4.0"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("CC-BY-SA-4.0", "ODbL-1.0"),
        ("CC-BY-SA-4.0", "CDLA-Sharing-1.0"),
        ("GPL-3.0-only", "CC-BY-SA-4.0"),
        ("GPL-2.0-only", "GPL-3.0-only"),
        # 1.0 has no later-version clause, so it does not join its family.
        ("CC-BY-SA-1.0", "CC-BY-SA-4.0"),
    ],
)
def test_check_use_train_model_different_share_alike_licenses_blocked(
    first: str, second: str
) -> None:
    verdict = check_use([first, second], "train-model")
    assert (first, "share-alike-license-conflict") in _rules(verdict.blocking)
    assert verdict.blocking[0].conflicts_with == second


def test_check_use_train_model_same_share_alike_family_takes_latest_version() -> None:
    verdict = check_use(["CC-BY-SA-3.0-DE", "CC-BY-SA-4.0", "CC-BY-SA-2.0"], "train-model")
    assert verdict.allowed
    assert verdict.resulting_license == "CC-BY-SA-4.0"
    assert "License the model under CC-BY-SA-4.0." in verdict.obligations


def test_check_use_train_model_same_non_cc_share_alike_license_allowed() -> None:
    verdict = check_use(["ODbL-1.0", "ODbL-1.0 AND MIT"], "train-model")
    assert verdict.allowed
    assert verdict.resulting_license == "ODbL-1.0"


def test_check_use_train_model_by_with_by_sa_results_by_sa() -> None:
    verdict = check_use(["CC-BY-4.0", "CC-BY-SA-4.0"], "train-model")
    assert verdict.allowed
    assert verdict.resulting_class == BY_SA
    assert verdict.resulting_license == "CC-BY-SA-4.0"


def test_check_use_train_model_by_with_by_nc_results_by_nc() -> None:
    verdict = check_use(["CC-BY-4.0", "CC-BY-NC-4.0"], "train-model")
    assert verdict.allowed
    assert verdict.resulting_class == BY_NC
    assert verdict.resulting_license is None
    assert "Use and share the model non-commercially only." in verdict.obligations


def test_check_use_train_model_by_nc_with_by_nc_sa_results_by_nc_sa() -> None:
    verdict = check_use(["CC-BY-NC-4.0", "CC-BY-NC-SA-4.0", "CC0-1.0"], "train-model")
    assert verdict.allowed
    assert verdict.resulting_class == BY_NC_SA
    assert verdict.resulting_license == "CC-BY-NC-SA-4.0"


def test_check_use_train_model_academic_only_with_share_alike_blocked() -> None:
    table = _table_with(_entry(ACADEMIC_REF, use="academic-only"))
    verdict = check_use(["CC-BY-NC-SA-4.0", ACADEMIC_REF], "train-model", table=table)
    assert _rules(verdict.blocking) == {(ACADEMIC_REF, "share-alike-use-conflict")}


def test_check_use_train_model_permissive_items_results_attribution_only() -> None:
    verdict = check_use(["CC0-1.0", "MIT", "CC-BY-4.0"], "train-model")
    assert verdict.allowed
    assert verdict.resulting_class == BY
    assert verdict.resulting_license is None


def test_check_use_or_expression_uses_least_restrictive_alternative() -> None:
    # Taken under CC-BY-4.0, the dual-licensed item no longer forces BY-SA onto the model.
    verdict = check_use(["CC-BY-4.0 OR CC-BY-SA-4.0", "CC-BY-NC-4.0"], "train-model")
    assert verdict.allowed
    assert verdict.resulting_class == BY_NC


def test_check_use_blocking_lists_each_expression_once() -> None:
    verdict = check_use(["CC-BY-NC-4.0"] * 5 + ["MIT"], "commercial")
    assert len(verdict.blocking) == 1


def test_check_use_staff_edited_table_changes_verdict() -> None:
    table = _table_with(_entry("CC-BY-4.0", use="non-commercial"))
    assert check_use(["CC-BY-4.0"], "commercial").allowed
    assert not check_use(["CC-BY-4.0"], "commercial", table=table).allowed


def test_check_use_empty_set_allowed() -> None:
    verdict = check_use([], "train-model")
    assert verdict.allowed
    assert verdict.resulting_class == PERMISSIVE


def test_check_use_unknown_intended_use_raises_value_error() -> None:
    with pytest.raises(ValueError, match="intended use"):
        check_use(["MIT"], "sell-to-advertisers")


def test_check_use_single_string_raises_value_error() -> None:
    with pytest.raises(ValueError, match="one license expression per item"):
        check_use("MIT", "research")


def test_check_use_every_rule_code_documented() -> None:
    seen = {
        blocker.rule
        for items, use in [
            (["CC-BY-NC-4.0", "NOASSERTION", "CC-BY-4.0 AND"], "commercial"),
            (["CC-BY-ND-4.0", "CC-BY-SA-4.0", "ODbL-1.0", "CC-BY-NC-4.0"], "train-model"),
        ]
        for blocker in check_use(items, use).blocking
    }
    assert seen <= set(RULES)
    assert set(RULES) - seen == {"use-academic-only"}


# --- Attribution ---------------------------------------------------------------------------


def test_attribution_text_follows_tasl() -> None:
    text = attribution_text(
        title="Harbour at dusk",
        creator="Ana Kestrel",
        license="CC-BY-4.0",
        source_url="https://photos.example.org/1",
    )
    assert text == (
        '"Harbour at dusk" by Ana Kestrel, from https://photos.example.org/1, '
        "licensed under CC-BY-4.0."
    )


def test_attribution_text_without_creator_or_source_omits_them() -> None:
    assert attribution_text(title="Harbour", creator=" ", license="CC0-1.0") == (
        '"Harbour", licensed under CC0-1.0.'
    )


def test_attribution_text_blank_title_raises_value_error() -> None:
    with pytest.raises(ValueError, match="title"):
        attribution_text(title=" ", creator="Ana", license="MIT")


# --- Properties ----------------------------------------------------------------------------

_LEAVES = st.sampled_from(
    sorted(entry.spdx_id for entry in seed_entries() if entry.spdx_id != UNKNOWN) + ["Zlib"]
)
_EXPRESSIONS = st.recursive(
    _LEAVES,
    lambda inner: st.tuples(inner, st.sampled_from(["AND", "OR"]), inner).map(
        lambda parts: f"({parts[0]}) {parts[1]} ({parts[2]})"
    ),
    max_leaves=4,
)


def _at_least_as_restrictive(wider: LicenseClass, narrower: LicenseClass) -> bool:
    return (
        USES.index(wider.use) >= USES.index(narrower.use)
        and wider.attribution >= narrower.attribution
        and wider.share_alike >= narrower.share_alike
        and wider.no_derivatives >= narrower.no_derivatives
    )


@given(first=_EXPRESSIONS, second=_EXPRESSIONS)
def test_classify_and_at_least_as_restrictive_as_each_operand(first: str, second: str) -> None:
    both = classify(f"({first}) AND ({second})")
    assert _at_least_as_restrictive(both, classify(first))
    assert _at_least_as_restrictive(both, classify(second))


@given(first=_EXPRESSIONS, second=_EXPRESSIONS)
def test_classify_or_is_one_operand_and_at_most_as_restrictive(first: str, second: str) -> None:
    either = classify(f"({first}) OR ({second})")
    operands = (classify(first), classify(second))
    assert either in operands
    assert all(either.restrictiveness <= each.restrictiveness for each in operands)


@given(items=st.lists(_EXPRESSIONS, max_size=6))
def test_check_use_commercial_allowed_iff_combined_use_commercial(items: list[str]) -> None:
    assert check_use(items, "commercial").allowed == (combine(items).use == "commercial")


@given(items=st.lists(_EXPRESSIONS, max_size=6))
def test_check_use_train_model_result_is_combined_class(items: list[str]) -> None:
    verdict = check_use(items, "train-model")
    assert verdict.resulting_class == combine(items)
    assert dataclasses.replace(verdict, allowed=not verdict.blocking) == verdict
