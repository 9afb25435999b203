"""SPDX license expressions: parsing, classification, and the rules for combining them.

A pure module (no database): the rules can be used and tested alone. Built on
``license-expression`` and its bundled, offline SPDX index.

Classes follow the Data Provenance Initiative's axes (Longpre et al. 2023, "The Data
Provenance Initiative", arXiv:2310.16787): what use is permitted, and whether attribution,
share-alike and no-derivatives apply. They come from a catalogue: ``seed_table()`` reads
``provenance/data/license_classes.csv``; the app passes the staff-edited copy held in the
database as ``table=``. A valid SPDX id the catalogue lacks is *unclassified* and counts as
use ``"unspecified"``: nothing can be assumed permitted (``unclassified_ids`` names them).

An expression is classified as a whole:

- ``A AND B``: the licensee must honour both, so each axis takes the more restrictive value;
- ``A OR B``: the licensee picks one alternative and gets its whole bundle, so the class is
  the least restrictive alternative, ordered by (use, no-derivatives, share-alike,
  attribution); the axes are never mixed across alternatives;
- ``A WITH exception``: the class of ``A`` (an exception only adds permissions).

The combination rules follow Creative Commons' compatibility chart
(https://creativecommons.org/faq/#can-i-combine-material-under-different-creative-commons-licenses-in-my-work).
A trained model or an edited item is an *adaptation*; a dataset that keeps every item's own
license is a *collection*. A blocked verdict means "a person must look", so where the law is
unsettled the rules err towards blocking (e.g. a model trained on CDLA-Sharing data, whose
text leaves Results free, still counts as a share-alike adaptation).
"""

import csv
import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from license_expression import (
    AND,
    OR,
    LicenseSymbol,
    LicenseWithExceptionSymbol,
    Licensing,
    get_spdx_licensing,
)

# SPDX's own words for "the license is not known": kept as is, reported as unknown.
UNKNOWN = "NOASSERTION"
LICENSE_REF = re.compile(r"^LicenseRef-[A-Za-z0-9.\-]+$")
_LICENSE_REF_TOKEN = re.compile(r"LicenseRef-[A-Za-z0-9.\-]*", re.IGNORECASE)

SEED_CSV = Path(__file__).resolve().parent / "data" / "license_classes.csv"

Use = Literal["commercial", "non-commercial", "academic-only", "unspecified"]
# Least to most restrictive: "unspecified" dominates, as an unknown license permits nothing.
USES: tuple[Use, ...] = ("commercial", "non-commercial", "academic-only", "unspecified")
_USE_BY_NAME: dict[str, Use] = {use: use for use in USES}

IntendedUse = Literal["commercial", "research", "redistribute-as-collection", "train-model"]
INTENDED_USES: tuple[IntendedUse, ...] = (
    "commercial",
    "research",
    "redistribute-as-collection",
    "train-model",
)
_INTENDED_USE_BY_NAME: dict[str, IntendedUse] = {use: use for use in INTENDED_USES}

# Stable rule codes of ``check_use`` and what each means.
RULES: Mapping[str, str] = MappingProxyType(
    {
        "invalid-license": "The license expression is not valid SPDX or names an "
        "unregistered LicenseRef.",
        "use-unspecified": "The license is unknown or not in the catalogue, so no use can be "
        "assumed permitted.",
        "use-non-commercial": "The license permits non-commercial use only.",
        "use-academic-only": "The license permits academic research use only.",
        "no-derivatives": "The license forbids sharing adaptations, and a trained model is one.",
        "share-alike-license-conflict": "Two different share-alike licenses each require the "
        "adaptation to carry their own license.",
        "share-alike-use-conflict": "A share-alike license requires the adaptation to carry it, "
        "which would permit uses another item's license forbids.",
    }
)

# Creative Commons share-alike licenses from 2.0 on let adaptations use a later version (or
# a port) with the same elements, so they form one family; 1.0 binds to its exact text.
_CC_SHARE_ALIKE = re.compile(r"^(CC-BY(?:-NC)?-SA)-(\d+)\.(\d+)(?:-([A-Z]+))?$")


@dataclass(frozen=True)
class LicenseClass:
    """What a license (or a whole expression) permits, on the Data Provenance axes."""

    use: Use
    attribution: bool
    share_alike: bool
    no_derivatives: bool

    @property
    def restrictiveness(self) -> tuple[int, bool, bool, bool]:
        """Sort key, least restrictive first: use, then no-derivatives, share-alike, attribution."""
        return (USES.index(self.use), self.no_derivatives, self.share_alike, self.attribution)


# The class of "no conditions": the identity of AND.
PERMISSIVE = LicenseClass("commercial", attribution=False, share_alike=False, no_derivatives=False)
# The class of an unknown or unclassified license.
UNSPECIFIED = LicenseClass(
    "unspecified", attribution=False, share_alike=False, no_derivatives=False
)


def _most_restrictive(classes: Iterable[LicenseClass]) -> LicenseClass:
    result = PERMISSIVE
    for each in classes:
        result = LicenseClass(
            use=max(result.use, each.use, key=USES.index),
            attribution=result.attribution or each.attribution,
            share_alike=result.share_alike or each.share_alike,
            no_derivatives=result.no_derivatives or each.no_derivatives,
        )
    return result


@dataclass(frozen=True)
class CatalogueEntry:
    """One row of the license catalogue; fields match ``LicenseCatalogEntry`` and the CSV."""

    spdx_id: str
    name: str
    use: Use
    attribution: bool
    share_alike: bool
    no_derivatives: bool
    terms_url: str = ""
    source_url: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        if self.use not in USES:
            raise ValueError(f"{self.spdx_id}: use {self.use!r} is not one of {', '.join(USES)}.")

    @property
    def license_class(self) -> LicenseClass:
        return LicenseClass(self.use, self.attribution, self.share_alike, self.no_derivatives)


CATALOGUE_COLUMNS: tuple[str, ...] = tuple(field.name for field in fields(CatalogueEntry))


class LicenseTable:
    """The catalogue the rules run on, keyed by canonical SPDX id.

    A ``LicenseRef-`` id is usable in expressions only once registered here with the URL
    of its terms (``custom_refs``). Raises ``ValueError`` on a row whose id is not a single
    SPDX id, ``LicenseRef-`` id or ``NOASSERTION``, or on a repeated id. From the database::

        LicenseTable(
            CatalogueEntry(**row) for row in LicenseCatalogEntry.objects.values(*CATALOGUE_COLUMNS)
        )
    """

    def __init__(self, entries: Iterable[CatalogueEntry]) -> None:
        by_id: dict[str, CatalogueEntry] = {}
        for entry in entries:
            key = _catalogue_key(entry.spdx_id)
            if key in by_id:
                raise ValueError(f"License {key} is in the catalogue twice.")
            by_id[key] = entry
        self._entries: Mapping[str, CatalogueEntry] = MappingProxyType(by_id)
        self.custom_refs: frozenset[str] = frozenset(
            key for key, entry in by_id.items() if key.startswith("LicenseRef-") and entry.terms_url
        )

    def __contains__(self, spdx_id: object) -> bool:
        return spdx_id in self._entries

    def get(self, spdx_id: str) -> CatalogueEntry | None:
        return self._entries.get(spdx_id)

    def class_of(self, spdx_id: str) -> LicenseClass | None:
        entry = self._entries.get(spdx_id)
        return entry.license_class if entry is not None else None

    def terms_url(self, spdx_id: str) -> str:
        entry = self._entries.get(spdx_id)
        return entry.terms_url if entry is not None else ""


def _catalogue_key(spdx_id: str) -> str:
    text = spdx_id.strip()
    if text.upper() == UNKNOWN:
        return UNKNOWN
    if text.lower().startswith("licenseref-"):
        key = "LicenseRef-" + text[len("LicenseRef-") :]
        if not LICENSE_REF.match(key):
            raise ValueError(f"{spdx_id!r} is not a valid LicenseRef identifier.")
        return key
    normalised = _normalise(text, frozenset())
    if " " in normalised:
        raise ValueError(f"{spdx_id!r} is an expression, not a single license id.")
    return normalised


def _parse_bool(value: str, *, column: str, line: int) -> bool:
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"Line {line}: {column} must be 'true' or 'false', not {value!r}.")
    return lowered == "true"


def read_catalogue(path: Path) -> tuple[CatalogueEntry, ...]:
    """Catalogue rows from a CSV with ``CATALOGUE_COLUMNS``; ``ValueError`` names a bad line."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != CATALOGUE_COLUMNS:
            raise ValueError(f"{path.name}: the columns must be {', '.join(CATALOGUE_COLUMNS)}.")
        entries = []
        for row in reader:
            use = _USE_BY_NAME.get(row["use"].strip())
            if use is None:
                raise ValueError(f"Line {reader.line_num}: unknown use {row['use']!r}.")
            flags = {
                column: _parse_bool(row[column], column=column, line=reader.line_num)
                for column in ("attribution", "share_alike", "no_derivatives")
            }
            entries.append(
                CatalogueEntry(
                    spdx_id=row["spdx_id"].strip(),
                    name=row["name"].strip(),
                    use=use,
                    terms_url=row["terms_url"].strip(),
                    source_url=row["source_url"].strip(),
                    notes=row["notes"].strip(),
                    **flags,
                )
            )
    return tuple(entries)


@functools.cache
def seed_entries() -> tuple[CatalogueEntry, ...]:
    """The catalogue as shipped (``provenance/data/license_classes.csv``), for seeding."""
    return read_catalogue(SEED_CSV)


@functools.cache
def seed_table() -> LicenseTable:
    return LicenseTable(seed_entries())


@functools.cache
def _spdx() -> Licensing:
    return get_spdx_licensing()


# Bounded: each distinct set of registered references builds its own index.
@functools.lru_cache(maxsize=16)
def _licensing_with(custom_refs: frozenset[str]) -> Licensing:
    symbols = list(_spdx().known_symbols.values()) + [LicenseSymbol(ref) for ref in custom_refs]
    return Licensing(symbols=symbols)


def _licensing(refs: frozenset[str]) -> Licensing:
    return _licensing_with(refs) if refs else _spdx()


def _normalise(expression: str, refs: frozenset[str], table: LicenseTable | None = None) -> str:
    text = (expression or "").strip()
    if not text:
        raise ValueError("License expression is empty.")
    if text.upper() == UNKNOWN:
        return UNKNOWN
    registered = {ref.lower() for ref in refs}
    unregistered = sorted(
        {token for token in _LICENSE_REF_TOKEN.findall(text) if token.lower() not in registered}
    )
    if unregistered:
        held = [ref for ref in unregistered if table is not None and ref in table]
        if held:
            raise ValueError(
                f"{', '.join(held)} is in the license catalogue without the URL of its terms; "
                "add it to use the license."
            )
        raise ValueError(
            f"{', '.join(unregistered)} is not registered in the license catalogue; "
            "register it with the URL of its terms first."
        )
    try:
        info = _licensing(refs).validate(text)
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


def _refs(custom_refs: Iterable[str], table: LicenseTable) -> frozenset[str]:
    refs = frozenset(custom_refs)
    for ref in refs:
        if not LICENSE_REF.match(ref):
            raise ValueError(f"{ref!r} is not a valid LicenseRef identifier.")
    return refs | table.custom_refs


def parse(
    expression: str, *, custom_refs: Iterable[str] = (), table: LicenseTable | None = None
) -> str:
    """Return the normalised SPDX expression, or raise ``ValueError`` saying what is wrong.

    Case is normalised (``cc-by-nc-sa-4.0`` becomes ``CC-BY-NC-SA-4.0``). A ``LicenseRef-``
    identifier is accepted only when registered: listed in ``custom_refs`` or in the
    catalogue (``table``, by default the seeded one) with the URL of its terms.
    """
    table = seed_table() if table is None else table
    return _normalise(expression, _refs(custom_refs, table), table)


def is_valid(
    expression: str, *, custom_refs: Iterable[str] = (), table: LicenseTable | None = None
) -> bool:
    try:
        parse(expression, custom_refs=custom_refs, table=table)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class _Resolved:
    """An expression's class and the license ids of the alternative that class comes from."""

    license_class: LicenseClass
    ids: frozenset[str]


def _resolve(node: Any, table: LicenseTable) -> _Resolved:
    # ``node`` is a license-expression tree, which ships without type information.
    if isinstance(node, LicenseWithExceptionSymbol):
        node = node.license_symbol
    if isinstance(node, LicenseSymbol):
        return _Resolved(table.class_of(node.key) or UNSPECIFIED, frozenset({node.key}))
    parts = [_resolve(arg, table) for arg in node.args]
    if isinstance(node, AND):
        return _Resolved(
            _most_restrictive(part.license_class for part in parts),
            frozenset().union(*(part.ids for part in parts)),
        )
    if isinstance(node, OR):
        return min(parts, key=lambda part: part.license_class.restrictiveness)
    raise ValueError(f"Unsupported license expression node {node!r}.")


def _base_ids(node: Any) -> set[str]:
    if isinstance(node, LicenseWithExceptionSymbol):
        return {node.license_symbol.key}
    if isinstance(node, LicenseSymbol):
        return {node.key}
    return set().union(*(_base_ids(arg) for arg in node.args))


def _tree(expression: str, table: LicenseTable) -> Any:
    """The parsed tree of a valid expression; ``None`` for ``NOASSERTION``."""
    normalised = parse(expression, table=table)
    if normalised == UNKNOWN:
        return None
    return _licensing(table.custom_refs).parse(normalised)


def _resolve_expression(expression: str, table: LicenseTable) -> _Resolved:
    tree = _tree(expression, table)
    if tree is None:
        return _Resolved(table.class_of(UNKNOWN) or UNSPECIFIED, frozenset({UNKNOWN}))
    return _resolve(tree, table)


def classify(expression: str, *, table: LicenseTable | None = None) -> LicenseClass:
    """The class of a whole expression (see the module docstring for AND, OR and WITH).

    Raises ``ValueError`` for an invalid expression; an unclassified id counts as
    ``UNSPECIFIED``.
    """
    table = seed_table() if table is None else table
    return _resolve_expression(expression, table).license_class


def unclassified_ids(expression: str, *, table: LicenseTable | None = None) -> tuple[str, ...]:
    """The license ids in a valid expression that the catalogue has no class for, sorted."""
    table = seed_table() if table is None else table
    tree = _tree(expression, table)
    ids = {UNKNOWN} if tree is None else _base_ids(tree)
    return tuple(sorted(spdx_id for spdx_id in ids if spdx_id not in table))


def combine(expressions: Iterable[str], *, table: LicenseTable | None = None) -> LicenseClass:
    """The class of a set of items: the most restrictive use wins, every flag propagates.

    A blank expression is an item whose license nobody recorded: ``UNSPECIFIED``.
    """
    table = seed_table() if table is None else table
    return _most_restrictive(
        classify(expression, table=table) if expression.strip() else UNSPECIFIED
        for expression in expressions
    )


@dataclass(frozen=True)
class Blocker:
    """One reason an intended use is not allowed: an item license and the rule it breaks.

    ``rule`` is a code from ``RULES``; ``conflicts_with`` names the other expression when
    the rule is about a combination.
    """

    expression: str
    rule: str
    message: str
    conflicts_with: str | None = None


@dataclass(frozen=True)
class Verdict:
    """The answer of ``check_use``.

    ``obligations`` are what the user must do when going ahead. For ``train-model``,
    ``resulting_class`` is the class of the adaptation and ``resulting_license`` the
    share-alike license it must carry, if one governs it (``None`` when it may be licensed
    freely within ``resulting_class``, or when the share-alike licenses conflict).
    """

    intended_use: IntendedUse
    allowed: bool
    blocking: tuple[Blocker, ...]
    obligations: tuple[str, ...]
    resulting_class: LicenseClass | None = None
    resulting_license: str | None = None


def _share_alike_family(spdx_id: str) -> str:
    match = _CC_SHARE_ALIKE.match(spdx_id)
    if match and (int(match[2]), int(match[3])) >= (2, 0):
        return match[1]
    return spdx_id


def _latest(spdx_ids: Iterable[str]) -> str:
    """The id an adaptation of one share-alike family carries: the newest version, unported."""

    def key(spdx_id: str) -> tuple[int, int, bool, str]:
        match = _CC_SHARE_ALIKE.match(spdx_id)
        if match is None:
            return (0, 0, True, spdx_id)
        return (int(match[2]), int(match[3]), match[4] is None, spdx_id)

    return max(spdx_ids, key=key)


def _unspecified_message(expression: str, resolved: _Resolved, table: LicenseTable) -> str:
    if not expression.strip():
        return "No license is recorded for these items, so no use can be assumed permitted."
    missing = sorted(spdx_id for spdx_id in resolved.ids if spdx_id not in table)
    if missing:
        return (
            f"{', '.join(missing)} in {expression} is not in the license catalogue, "
            "so no use can be assumed permitted."
        )
    return f"The license {expression} is unknown, so no use can be assumed permitted."


def _item_blockers(
    expression: str, resolved: _Resolved, intended_use: IntendedUse, table: LicenseTable
) -> list[Blocker]:
    license_class = resolved.license_class
    if license_class.use == "unspecified":
        message = _unspecified_message(expression, resolved, table)
        return [Blocker(expression, "use-unspecified", message)]
    blockers = []
    if intended_use == "commercial" and license_class.use == "non-commercial":
        message = f"{expression} permits non-commercial use only."
        blockers.append(Blocker(expression, "use-non-commercial", message))
    if intended_use == "commercial" and license_class.use == "academic-only":
        message = f"{expression} permits academic research use only."
        blockers.append(Blocker(expression, "use-academic-only", message))
    if intended_use == "train-model" and license_class.no_derivatives:
        message = f"{expression} forbids sharing adaptations, and a trained model is one."
        blockers.append(Blocker(expression, "no-derivatives", message))
    return blockers


def _share_alike_blockers(
    resolved: Mapping[str, _Resolved], table: LicenseTable
) -> tuple[list[Blocker], str | None]:
    """Blockers for combining items into one adaptation, and the license it must carry."""
    # (expression, license id) for every share-alike license the items are taken under.
    share_alike = [
        (expression, spdx_id, license_class)
        for expression, item in resolved.items()
        for spdx_id in sorted(item.ids)
        if (license_class := table.class_of(spdx_id)) is not None and license_class.share_alike
    ]
    blockers: list[Blocker] = []
    for index, (expression, spdx_id, _) in enumerate(share_alike):
        for other_expression, other_id, _ in share_alike[index + 1 :]:
            if _share_alike_family(spdx_id) != _share_alike_family(other_id):
                message = (
                    f"{spdx_id} and {other_id} each require the adaptation to carry their "
                    "own license; no adaptation can satisfy both."
                )
                blockers.append(
                    Blocker(expression, "share-alike-license-conflict", message, other_expression)
                )
    for expression, spdx_id, license_class in share_alike:
        for other_expression, item in resolved.items():
            other_use = item.license_class.use
            if other_use != "unspecified" and USES.index(other_use) > USES.index(license_class.use):
                message = (
                    f"{spdx_id} requires the adaptation to carry it, which would permit uses "
                    f"that {other_expression} ({other_use}) forbids."
                )
                blockers.append(
                    Blocker(other_expression, "share-alike-use-conflict", message, expression)
                )
    if blockers or not share_alike:
        return blockers, None
    return blockers, _latest(spdx_id for _, spdx_id, _ in share_alike)


def _obligations(
    counts: Counter[str],
    resolved: Mapping[str, _Resolved],
    intended_use: IntendedUse,
    resulting: tuple[LicenseClass | None, str | None],
) -> list[str]:
    def count(predicate: Callable[[LicenseClass], bool]) -> int:
        return sum(
            counts[expression]
            for expression, item in resolved.items()
            if predicate(item.license_class)
        )

    attribution = count(lambda c: c.attribution)
    share_alike = count(lambda c: c.share_alike)
    no_derivatives = count(lambda c: c.no_derivatives)
    non_commercial = count(lambda c: c.use == "non-commercial")
    academic = count(lambda c: c.use == "academic-only")
    obligations = []
    if attribution:
        obligations.append(
            f"Credit {attribution} item(s) whose license requires attribution "
            "(title, creator, source, license)."
        )
    if intended_use == "redistribute-as-collection":
        obligations.append("Keep each item's license and attribution with the item.")
        if non_commercial:
            obligations.append(f"Redistribute {non_commercial} item(s) non-commercially only.")
        if academic:
            obligations.append(f"Redistribute {academic} item(s) for academic research only.")
        if share_alike:
            obligations.append(f"Keep {share_alike} share-alike item(s) under their own license.")
        if no_derivatives:
            obligations.append(f"Redistribute {no_derivatives} no-derivatives item(s) unmodified.")
    elif intended_use == "train-model":
        resulting_class, resulting_license = resulting
        if resulting_license:
            obligations.append(f"License the model under {resulting_license}.")
        if resulting_class is not None and resulting_class.use == "non-commercial":
            obligations.append("Use and share the model non-commercially only.")
        if resulting_class is not None and resulting_class.use == "academic-only":
            obligations.append("Use the model for academic research only.")
    else:
        if intended_use == "research" and non_commercial:
            obligations.append(f"Keep the use of {non_commercial} item(s) non-commercial.")
        if intended_use == "research" and academic:
            obligations.append(f"Use {academic} item(s) for academic research only.")
        if share_alike:
            obligations.append(
                f"Share adaptations of {share_alike} share-alike item(s) under the same license."
            )
        if no_derivatives:
            obligations.append(
                f"Do not share adaptations of {no_derivatives} no-derivatives item(s)."
            )
    return obligations


def check_use(
    expressions: Iterable[str], intended_use: str, *, table: LicenseTable | None = None
) -> Verdict:
    """Whether a set of items may be put to ``intended_use``, and what blocks it.

    ``expressions`` holds one license expression per item (repeats expected; a blank one is
    an item whose license nobody recorded). Each distinct expression that blocks appears in
    ``Verdict.blocking`` with its rule, so the caller can map it back to its items.

    - every use: an unknown, unclassified or invalid license blocks;
    - ``commercial``: a non-commercial or academic-only license blocks;
    - ``research`` and ``redistribute-as-collection``: nothing else blocks (a collection is
      not an adaptation, so no-derivatives items may be included unmodified);
    - ``train-model``: the model is an adaptation of every item: no-derivatives blocks, two
      share-alike licenses of different families cannot both govern it, and a share-alike
      license cannot govern it together with an item restricted to a narrower use
      (BY-SA with BY-NC or BY-NC-SA). Otherwise BY + BY-SA gives BY-SA, BY + BY-NC gives
      BY-NC: ``resulting_class``.
    """
    if isinstance(expressions, str):
        raise ValueError("check_use takes one license expression per item, not one string.")
    use = _INTENDED_USE_BY_NAME.get(intended_use)
    if use is None:
        raise ValueError(
            f"Unknown intended use {intended_use!r}; expected one of {', '.join(INTENDED_USES)}."
        )
    table = seed_table() if table is None else table
    counts = Counter(expressions)
    blocking: list[Blocker] = []
    resolved: dict[str, _Resolved] = {}
    for expression in counts:
        if not expression.strip():
            item = _Resolved(UNSPECIFIED, frozenset())
        else:
            try:
                item = _resolve_expression(expression, table)
            except ValueError as error:
                # An item whose license cannot be read is an item whose license is unknown.
                resolved[expression] = _Resolved(UNSPECIFIED, frozenset())
                blocking.append(Blocker(expression, "invalid-license", str(error)))
                continue
        resolved[expression] = item
        blocking.extend(_item_blockers(expression, item, use, table))
    resulting_class: LicenseClass | None = None
    resulting_license: str | None = None
    if use == "train-model":
        resulting_class = _most_restrictive(item.license_class for item in resolved.values())
        share_alike_blockers, resulting_license = _share_alike_blockers(resolved, table)
        blocking.extend(share_alike_blockers)
    obligations = _obligations(counts, resolved, use, (resulting_class, resulting_license))
    return Verdict(
        intended_use=use,
        allowed=not blocking,
        blocking=tuple(blocking),
        obligations=tuple(obligations),
        resulting_class=resulting_class,
        resulting_license=resulting_license,
    )


def attribution_text(*, title: str, creator: str, license: str, source_url: str = "") -> str:
    """A TASL attribution: '"Title" by Creator, from Source, licensed under License.'

    The creator and source parts are left out when blank; raises ``ValueError`` when the
    title or license is blank.
    """
    title, creator, license, source_url = (
        part.strip() for part in (title, creator, license, source_url)
    )
    if not title or not license:
        raise ValueError("An attribution needs a title and a license.")
    text = f'"{title}"'
    if creator:
        text += f" by {creator}"
    if source_url:
        text += f", from {source_url}"
    return f"{text}, licensed under {license}."
