"""The recipe of a dataset version: what a researcher chooses, validated once.

A recipe is stored with its version as the canonical JSON ``Recipe.to_json`` gives, so
that a rebuild reproduces it and two versions can be compared field by field. Every
field is optional; the defaults are the product's:

```json
{
  "min_labels": 1,
  "targets": ["majority", "dawid_skene", "soft"],
  "license_use": "research",
  "consent": "standard",
  "split": {"ratios": [0.8, 0.1, 0.1], "seed": 0, "strategy": "random", "group_key": null},
  "formats": ["parquet"],
  "near_duplicates": {"text_threshold": 0.8, "image_max_distance": 6},
  "stable_pseudonyms": false
}
```

- ``min_labels``: items with fewer non-withdrawn labels are left out ("too few labels");
  1 means every labeled item. Control items (gold, attention) are never data.
- ``targets``: the aggregated labels shipped beside the annotator-level labels (which
  always ship), computed by ``annotation.agreement``.
- ``license_use``: the intended use of ``provenance.licenses.check_use``; items whose
  license blocks it are left out ("license").
- ``consent``: ``standard`` leaves out items showing people who did not consent, and, in
  image projects, pictures whose consent is unknown; ``strict`` keeps only items that
  show nobody or whose consent is on record; ``all`` keeps every item (the datasheet
  says so).
- ``split.strategy``: ``random``; ``stratified`` by the aggregated label; ``grouped`` by
  ``group_key`` (``source``, ``creator`` or ``metadata.<key>``), so a group never
  straddles splits. Near-duplicate clusters never straddle splits, whatever the strategy.
- ``formats``: Parquet always; ``jsonl`` and ``csv`` on request.
- ``stable_pseudonyms``: pseudonyms are an HMAC with a key of each version's own, so two
  versions cannot be joined on annotators; ``true`` uses the project's key instead.
"""

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

from core.errors import ValidationFailed
from ml.fields import FieldErrors, boolean, choices, number, unknown_keys, whole_number
from provenance.licenses import INTENDED_USES

TARGETS = ("majority", "dawid_skene", "soft")
FORMATS = ("parquet", "jsonl", "csv")
CONSENT_POLICIES = ("standard", "strict", "all")
STRATEGIES = ("random", "stratified", "grouped")
ITEM_GROUP_FIELDS = ("source", "creator")
METADATA_PREFIX = "metadata."
SPLITS = ("train", "validation", "test")

ConsentPolicy = Literal["standard", "strict", "all"]
Strategy = Literal["random", "stratified", "grouped"]


@dataclass(frozen=True)
class SplitRecipe:
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    strategy: Strategy = "random"
    group_key: str | None = None


@dataclass(frozen=True)
class NearDuplicateRecipe:
    text_threshold: float = 0.8
    image_max_distance: int = 6


@dataclass(frozen=True)
class Recipe:
    min_labels: int = 1
    targets: tuple[str, ...] = TARGETS
    license_use: str = "research"
    consent: ConsentPolicy = "standard"
    split: SplitRecipe = field(default_factory=SplitRecipe)
    formats: tuple[str, ...] = ("parquet",)
    near_duplicates: NearDuplicateRecipe = field(default_factory=NearDuplicateRecipe)
    stable_pseudonyms: bool = False

    def to_json(self) -> dict[str, Any]:
        """The canonical form: every field, lists for tuples, keys in a fixed order."""
        data = asdict(self)
        data["targets"] = list(self.targets)
        data["formats"] = list(self.formats)
        data["split"]["ratios"] = list(self.split.ratios)
        return data

    def canonical(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    def with_changes(self, **changes: Any) -> "Recipe":
        data = self.to_json()
        data.update(changes)
        return recipe_from_json(data)


def _group_key(value: object, errors: FieldErrors) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value in ITEM_GROUP_FIELDS:
            return value
        if value.startswith(METADATA_PREFIX) and 0 < len(value) - len(METADATA_PREFIX) <= 100:
            return value
    errors.add("split.group_key", "Must be 'source', 'creator' or 'metadata.<key>' (or null).")
    return None


def _split(raw: object, errors: FieldErrors) -> SplitRecipe:
    default = SplitRecipe()
    if raw is None:
        return default
    if not isinstance(raw, Mapping):
        errors.add("split", "Must be an object.")
        return default
    unknown_keys(raw, ("ratios", "seed", "strategy", "group_key"), "split", errors)
    ratios_raw = raw.get("ratios", list(default.ratios))
    ratios = default.ratios
    if (
        not isinstance(ratios_raw, list)
        or len(ratios_raw) != 3
        or any(
            isinstance(r, bool) or not isinstance(r, int | float) or not math.isfinite(r) or r < 0
            for r in ratios_raw
        )
    ):
        errors.add("split.ratios", "Must be three numbers ≥ 0 (train, validation, test).")
    elif abs(sum(ratios_raw) - 1.0) > 1e-9 or ratios_raw[0] <= 0:
        errors.add("split.ratios", "Must add up to 1, with a train share above 0.")
    else:
        ratios = (float(ratios_raw[0]), float(ratios_raw[1]), float(ratios_raw[2]))
    seed = whole_number(raw.get("seed", 0), "split.seed", errors, low=0, high=2**32 - 1)
    strategy = raw.get("strategy", "random")
    if strategy not in STRATEGIES:
        errors.add("split.strategy", f"Must be one of {', '.join(STRATEGIES)}.")
        strategy = "random"
    group_key = _group_key(raw.get("group_key"), errors)
    if strategy == "grouped" and group_key is None:
        errors.add("split.group_key", "A grouped split needs a group key.")
    if strategy != "grouped" and group_key is not None:
        errors.add("split.group_key", "Only a grouped split takes a group key.")
    return SplitRecipe(
        ratios=ratios, seed=seed, strategy=cast(Strategy, strategy), group_key=group_key
    )


def _near_duplicates(raw: object, errors: FieldErrors) -> NearDuplicateRecipe:
    if raw is None:
        return NearDuplicateRecipe()
    if not isinstance(raw, Mapping):
        errors.add("near_duplicates", "Must be an object.")
        return NearDuplicateRecipe()
    unknown_keys(raw, ("text_threshold", "image_max_distance"), "near_duplicates", errors)
    return NearDuplicateRecipe(
        text_threshold=number(
            raw.get("text_threshold", 0.8),
            "near_duplicates.text_threshold",
            errors,
            low=0.5,
            high=1.0,
        ),
        image_max_distance=whole_number(
            raw.get("image_max_distance", 6),
            "near_duplicates.image_max_distance",
            errors,
            low=0,
            high=16,
        ),
    )


def recipe_from_json(raw: object) -> Recipe:
    """Validate a recipe (a JSON object, every field optional). Raises
    ``ValidationFailed(code="invalid_recipe")`` with ``extra["fields"]`` naming every
    problem."""
    errors = FieldErrors("invalid_recipe")
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ValidationFailed("A recipe must be a JSON object.", code="invalid_recipe")
    unknown_keys(
        raw,
        (
            "min_labels",
            "targets",
            "license_use",
            "consent",
            "split",
            "formats",
            "near_duplicates",
            "stable_pseudonyms",
        ),
        "",
        errors,
    )
    min_labels = whole_number(raw.get("min_labels", 1), "min_labels", errors, low=1, high=1000)
    targets = choices(raw.get("targets", list(TARGETS)), "targets", errors, allowed=TARGETS)
    license_use = raw.get("license_use", "research")
    if license_use not in INTENDED_USES:
        errors.add("license_use", f"Must be one of {', '.join(INTENDED_USES)}.")
        license_use = "research"
    consent = raw.get("consent", "standard")
    if consent not in CONSENT_POLICIES:
        errors.add("consent", f"Must be one of {', '.join(CONSENT_POLICIES)}.")
        consent = "standard"
    formats = choices(raw.get("formats", ["parquet"]), "formats", errors, allowed=FORMATS)
    stable = boolean(raw.get("stable_pseudonyms", False), "stable_pseudonyms", errors)
    split = _split(raw.get("split"), errors)
    near = _near_duplicates(raw.get("near_duplicates"), errors)
    errors.raise_if_any()
    return Recipe(
        min_labels=min_labels,
        targets=targets,
        license_use=str(license_use),
        consent=cast(ConsentPolicy, consent),
        split=split,
        formats=tuple(sorted({"parquet", *formats}, key=FORMATS.index)),
        near_duplicates=near,
        stable_pseudonyms=stable,
    )
