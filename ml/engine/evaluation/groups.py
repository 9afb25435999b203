"""Per-group error tables: who does the model fail, and whose view did it learn?

``item_group_table`` is the table of Buolamwini & Gebru's "Gender Shades" (2018): for each
group of items (by a metadata key, or the intersection of two keys from
``intersection_groups``, e.g. F/M x darker/lighter) and each class, one-vs-rest within the
group:

- ``ppv = TP / (TP + FP)``, ``tpr = TP / (TP + FN)``, ``fpr = FP / (FP + TN)``,
- ``error_rate = (FP + FN) / n``, where ``n`` is the group's row count,

with ``n``, ``n_class`` (the group's rows of that true class) and ``small = n <
min_group_size``: a ratio over a handful of rows is noise, and the flag says so. A ratio
with a zero denominator is ``None``. The rows of group key ``"all"`` (value ``"all"``) are
the whole set, the reference line; they come first, then the keys in sorted order, values
sorted with ``MISSING`` last, classes in the given order. A value of ``None``, NaN or ``""``
is ``MISSING``, a group of its own (items without the metadata are people too), and other
values are compared as their ``str``.

``annotator_group_agreement`` answers the second question. For each survey question and
answer, the group is the annotators who gave that answer; its view of an item is the
majority of the group's labels on it. Items where the group's top labels tie have no group
view and are counted in ``tied``, not in ``items``: breaking the tie by class order would
credit the model with agreeing with whichever class comes first (the bundle's ``majority``
treats ties the same way). ``agreement`` is the share of ``items`` where the model's
predicted label equals the group's majority. A null answer and "prefer not to say" form no
group: an annotator who did not say is in no group, and "did not say" is no shared view.
A multiple-choice answer (a JSON list of options, as the bundle writes it) puts the
annotator in the group of each option. The row of question ``"all"`` (answer ``"all"``) is
the whole pool of annotators. ``small = items < min_group_size``.
"""

import json
import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from annotation.surveys import PREFER_NOT_TO_SAY
from ml.engine.evaluation.metrics import confusion_matrix

MISSING = "(missing)"
OVERALL = "all"
INTERSECTION = "×"
DEFAULT_MIN_GROUP_SIZE = 30
ITEM_COLUMNS = (
    "group_key",
    "group_value",
    "class",
    "n",
    "n_class",
    "ppv",
    "error_rate",
    "tpr",
    "fpr",
    "small",
)
ANNOTATOR_COLUMNS = ("question", "answer", "annotators", "items", "tied", "agreement", "small")
_RATIO_COLUMNS = ("ppv", "error_rate", "tpr", "fpr")


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


def group_value(value: object) -> str:
    """A metadata value as a group name: ``MISSING`` for None, NaN and ""; else ``str``."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return str(value)


def _value_order(value: str) -> tuple[bool, str]:
    return (value == MISSING, value)


def intersection_groups(
    groups: Mapping[str, Sequence[object]], a: str, b: str
) -> dict[str, list[object]]:
    """``{"a×b": ["<value of a>×<value of b>", ...]}``, row by row (a missing side reads
    ``MISSING``), ready to merge into the ``groups`` of ``item_group_table``."""
    if len(groups[a]) != len(groups[b]):
        raise ValueError(f"Group keys {a!r} and {b!r} cover different rows.")
    return {
        f"{a}{INTERSECTION}{b}": [
            f"{group_value(left)}{INTERSECTION}{group_value(right)}"
            for left, right in zip(groups[a], groups[b], strict=True)
        ]
    }


def _group_rows(
    key: str,
    value: str,
    labels: npt.NDArray[np.int64],
    predicted: npt.NDArray[np.int64],
    classes: Sequence[str],
    min_group_size: int,
) -> list[dict[str, object]]:
    confusion = confusion_matrix(labels, predicted, len(classes))
    n = int(labels.shape[0])
    rows: list[dict[str, object]] = []
    for index, name in enumerate(classes):
        tp = int(confusion[index, index])
        fn = int(confusion[index, :].sum()) - tp
        fp = int(confusion[:, index].sum()) - tp
        tn = n - tp - fn - fp
        rows.append(
            {
                "group_key": key,
                "group_value": value,
                "class": name,
                "n": n,
                "n_class": tp + fn,
                "ppv": _ratio(tp, tp + fp),
                "error_rate": _ratio(fp + fn, n),
                "tpr": _ratio(tp, tp + fn),
                "fpr": _ratio(fp, fp + tn),
                "small": n < min_group_size,
            }
        )
    return rows


def _frame(
    rows: list[dict[str, object]], columns: Sequence[str], ratios: Sequence[str]
) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(columns))
    for column in ratios:
        # Object columns keep None as None (a float column would turn it into NaN).
        frame[column] = pd.Series([row[column] for row in rows], dtype=object)
    return frame


def item_group_table(
    labels: npt.ArrayLike,
    predicted: npt.ArrayLike,
    groups: Mapping[str, Sequence[object]],
    classes: Sequence[str],
    *,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
) -> pd.DataFrame:
    """The per-group, per-class table (columns ``ITEM_COLUMNS``); see the module docstring.

    ``labels`` and ``predicted`` are class indices per row; rows labelled -1 (no hard
    label) are left out. ``groups`` maps each key to one value per row.
    """
    true = np.asarray(labels, dtype=np.int64)
    guess = np.asarray(predicted, dtype=np.int64)
    if true.ndim != 1 or true.shape != guess.shape:
        raise ValueError("labels and predicted must be (n,) for the same rows.")
    if OVERALL in groups:
        raise ValueError(f"{OVERALL!r} names the whole set and cannot be a group key.")
    for key, values in groups.items():
        if len(values) != true.shape[0]:
            raise ValueError(f"Group key {key!r} has {len(values)} values for {len(true)} rows.")
    kept = true >= 0
    true, guess = true[kept], guess[kept]
    rows = _group_rows(OVERALL, OVERALL, true, guess, classes, min_group_size)
    for key in sorted(groups):
        names = np.array([group_value(value) for value in groups[key]], dtype=object)[kept]
        for value in sorted(set(names.tolist()), key=_value_order):
            mask = names == value
            rows += _group_rows(key, value, true[mask], guess[mask], classes, min_group_size)
    return _frame(rows, ITEM_COLUMNS, _RATIO_COLUMNS)


def _answers(answer: object) -> list[str]:
    """The groups an annotator's answer puts them in (none for null or prefer-not-to-say)."""
    if answer is None or answer is pd.NA or (isinstance(answer, float) and math.isnan(answer)):
        return []
    text = str(answer)
    options: list[str] = [text]
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            options = [str(option) for option in parsed]
    return [option for option in options if option not in ("", PREFER_NOT_TO_SAY)]


def _agreement_row(
    question: str,
    answer: str,
    labels: pd.DataFrame,
    predicted: "pd.Series[str]",
    min_group_size: int,
) -> dict[str, object]:
    items, tied, agreement = 0, 0, None
    if len(labels):
        counts = labels.groupby(["item_id", "label"], sort=True).size()
        top = counts.groupby(level="item_id").transform("max")
        at_top = counts[counts == top].reset_index()
        per_item = at_top.groupby("item_id")["label"]
        clear = per_item.size() == 1
        majority = per_item.first()[clear]
        items, tied = int(clear.sum()), int((~clear).sum())
        if items:
            agreement = float((majority == predicted.loc[majority.index]).mean())
    return {
        "question": question,
        "answer": answer,
        "annotators": int(labels["annotator"].nunique()),
        "items": items,
        "tied": tied,
        "agreement": agreement,
        "small": items < min_group_size,
    }


def annotator_group_agreement(
    item_ids: npt.ArrayLike,
    predicted: Sequence[str],
    annotations: pd.DataFrame,
    annotators: pd.DataFrame,
    questions: Sequence[str],
    *,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
) -> pd.DataFrame:
    """Agreement of the model with each annotator group's majority labels (columns
    ``ANNOTATOR_COLUMNS``); see the module docstring.

    ``predicted`` is the model's label per item of ``item_ids``; ``annotations`` has
    ``item_id``, ``annotator`` and ``label`` (rows on other items are ignored);
    ``annotators`` has ``annotator`` and one column per question. ``annotators`` counts the
    group's members who labeled at least one of the items. Rows: ``"all"`` first, then the
    questions in the given order, answers sorted.
    """
    ids = np.asarray(item_ids, dtype=np.int64)
    if ids.ndim != 1 or len(ids) != len(predicted) or len(np.unique(ids)) != len(ids):
        raise ValueError("item_ids must be unique, one per predicted label.")
    for question in questions:
        if question not in annotators.columns or question == "annotator":
            raise ValueError(f"{question!r} is not a survey question of the annotators.")
    by_item = pd.Series(list(predicted), index=pd.Index(ids, name="item_id"), dtype=object)
    labels = annotations.loc[
        annotations["item_id"].isin(by_item.index) & annotations["label"].notna(),
        ["item_id", "annotator", "label"],
    ]
    rows = [_agreement_row(OVERALL, OVERALL, labels, by_item, min_group_size)]
    for question in questions:
        members: dict[str, set[object]] = {}
        for annotator, answer in zip(annotators["annotator"], annotators[question], strict=True):
            for option in _answers(answer):
                members.setdefault(option, set()).add(annotator)
        for option in sorted(members):
            chosen = labels[labels["annotator"].isin(members[option])]
            rows.append(_agreement_row(question, option, chosen, by_item, min_group_size))
    return _frame(rows, ANNOTATOR_COLUMNS, ("agreement",))
