"""Per-group tables against confusion counts computed by hand, and annotator-group agreement
on a hand example."""

import pandas as pd
import pytest

from ml.engine.evaluation.groups import (
    ANNOTATOR_COLUMNS,
    ITEM_COLUMNS,
    MISSING,
    annotator_group_agreement,
    intersection_groups,
    item_group_table,
)

CLASSES = ("a", "b", "c")
# Twelve items: (sex, skin, true class, predicted class).
ROWS = [
    ("F", "darker", "a", "a"),  # 1
    ("F", "darker", "a", "b"),  # 2
    ("F", "lighter", "b", "b"),  # 3
    ("F", "lighter", "b", "b"),  # 4
    ("F", "darker", "c", "a"),  # 5
    ("F", "lighter", "c", "c"),  # 6
    ("M", "darker", "a", "a"),  # 7
    ("M", "lighter", "a", "a"),  # 8
    ("M", "lighter", "a", "a"),  # 9
    ("M", "darker", "b", "c"),  # 10
    ("M", None, "b", "a"),  # 11
    ("M", "lighter", "c", "c"),  # 12
]
LABELS = [CLASSES.index(row[2]) for row in ROWS]
PREDICTED = [CLASSES.index(row[3]) for row in ROWS]
GROUPS: dict[str, list[object]] = {
    "sex": [row[0] for row in ROWS],
    "skin": [row[1] for row in ROWS],
}

# Hand counts, one-vs-rest within the group: (n, TP, FP, FN, TN) per class, and from them
# (n, n_class, ppv, error_rate, tpr, fpr).
SEX_TABLE = {
    # F: a: TP 1 (1), FN 1 (2), FP 1 (5), TN 3.  b: TP 2, FN 0, FP 1 (2), TN 3.
    #    c: TP 1 (6), FN 1 (5), FP 0, TN 4.
    ("F", "a"): (6, 2, 1 / 2, 2 / 6, 1 / 2, 1 / 4),
    ("F", "b"): (6, 2, 2 / 3, 1 / 6, 1.0, 1 / 4),
    ("F", "c"): (6, 2, 1.0, 1 / 6, 1 / 2, 0.0),
    # M: a: TP 3, FN 0, FP 1 (11), TN 2.  b: TP 0, FN 2 (10, 11), FP 0, TN 4: PPV undefined.
    #    c: TP 1 (12), FN 0, FP 1 (10), TN 4.
    ("M", "a"): (6, 3, 3 / 4, 1 / 6, 1.0, 1 / 3),
    ("M", "b"): (6, 2, None, 2 / 6, 0.0, 0.0),
    ("M", "c"): (6, 1, 1 / 2, 1 / 6, 1.0, 1 / 5),
}
ALL_TABLE = {
    # a: TP 4, FN 1 (2), FP 2 (5, 11), TN 5.  b: TP 2, FN 2 (10, 11), FP 1 (2), TN 7.
    # c: TP 2, FN 1 (5), FP 1 (10), TN 8.
    ("all", "a"): (12, 5, 4 / 6, 3 / 12, 4 / 5, 2 / 7),
    ("all", "b"): (12, 4, 2 / 3, 3 / 12, 2 / 4, 1 / 8),
    ("all", "c"): (12, 3, 2 / 3, 2 / 12, 2 / 3, 1 / 9),
}
INTERSECTION_TABLE = {
    # F×darker = items 1, 2, 5.  a: TP 1, FN 1, FP 1, TN 0.  b: TP 0, FN 0, FP 1, TN 2:
    # no true b, TPR undefined.  c: TP 0, FN 1, FP 0, TN 2: nothing predicted c.
    ("F×darker", "a"): (3, 2, 1 / 2, 2 / 3, 1 / 2, 1.0),
    ("F×darker", "b"): (3, 0, 0.0, 1 / 3, None, 1 / 3),
    ("F×darker", "c"): (3, 1, None, 1 / 3, 0.0, 0.0),
    # M×(missing) = item 11 alone (b predicted a).  b: every row is b, so FPR undefined.
    ("M×(missing)", "a"): (1, 0, 0.0, 1.0, None, 1.0),
    ("M×(missing)", "b"): (1, 1, None, 1.0, 0.0, None),
    ("M×(missing)", "c"): (1, 0, None, 0.0, None, 0.0),
}


def _assert_rows(table: pd.DataFrame, key: str, expected: dict) -> None:
    for (value, name), (n, n_class, ppv, error_rate, tpr, fpr) in expected.items():
        found = table[
            (table["group_key"] == key) & (table["group_value"] == value) & (table["class"] == name)
        ]
        assert len(found) == 1, (value, name)
        row = found.iloc[0]
        assert (row["n"], row["n_class"]) == (n, n_class), (value, name)
        for column, wanted in (
            ("ppv", ppv),
            ("error_rate", error_rate),
            ("tpr", tpr),
            ("fpr", fpr),
        ):
            if wanted is None:
                assert row[column] is None, (value, name, column)
            else:
                assert row[column] == pytest.approx(wanted), (value, name, column)


def test_item_group_table_matches_hand_counted_confusions():
    table = item_group_table(LABELS, PREDICTED, {"sex": GROUPS["sex"]}, CLASSES)
    assert tuple(table.columns) == ITEM_COLUMNS
    _assert_rows(table, "sex", SEX_TABLE)
    _assert_rows(table, "all", ALL_TABLE)
    assert len(table) == 9


def test_item_group_table_intersection_groups_match_hand_counts():
    groups = {**GROUPS, **intersection_groups(GROUPS, "sex", "skin")}
    table = item_group_table(LABELS, PREDICTED, groups, CLASSES)
    _assert_rows(table, "sex×skin", INTERSECTION_TABLE)
    values = table.loc[table["group_key"] == "sex×skin", "group_value"].unique().tolist()
    assert values == ["F×darker", "F×lighter", "M×(missing)", "M×darker", "M×lighter"]
    skin = table.loc[table["group_key"] == "skin", "group_value"].unique().tolist()
    assert skin == ["darker", "lighter", MISSING]


def test_item_group_table_order_all_first_then_keys_values_classes():
    groups = {**GROUPS, **intersection_groups(GROUPS, "sex", "skin")}
    table = item_group_table(LABELS, PREDICTED, groups, CLASSES)
    keys = list(dict.fromkeys(table["group_key"]))
    assert keys == ["all", "sex", "sex×skin", "skin"]
    assert table["class"].tolist()[:6] == ["a", "b", "c", "a", "b", "c"]


def test_item_group_table_small_groups_flagged_below_minimum():
    groups = {**GROUPS, **intersection_groups(GROUPS, "sex", "skin")}
    table = item_group_table(LABELS, PREDICTED, groups, CLASSES, min_group_size=6)
    small = table.groupby(["group_key", "group_value"])["small"].first().to_dict()
    assert not small[("all", "all")]  # n = 12
    assert not small[("sex", "F")] and not small[("sex", "M")]  # n = 6, not below 6
    assert small[("sex×skin", "F×darker")]  # n = 3
    assert small[("skin", MISSING)]  # n = 1
    assert not small[("skin", "lighter")]  # n = 6


def test_item_group_table_undefined_ratios_are_none_not_nan():
    table = item_group_table(LABELS, PREDICTED, {"sex": GROUPS["sex"]}, CLASSES)
    ppv = table.loc[(table["group_value"] == "M") & (table["class"] == "b"), "ppv"].iloc[0]
    assert ppv is None
    ratios = table[["ppv", "error_rate", "tpr", "fpr"]].to_numpy().ravel().tolist()
    assert None in ratios
    assert not any(isinstance(value, float) and value != value for value in ratios)  # NaN


def test_item_group_table_unlabelled_rows_left_out():
    labels = [*LABELS, -1]
    predicted = [*PREDICTED, 0]
    table = item_group_table(labels, predicted, {"sex": [*GROUPS["sex"], "F"]}, CLASSES)
    _assert_rows(table, "sex", SEX_TABLE)


def test_item_group_table_refuses_wrong_lengths_and_reserved_key():
    with pytest.raises(ValueError):
        item_group_table(LABELS, PREDICTED, {"sex": GROUPS["sex"][:-1]}, CLASSES)
    with pytest.raises(ValueError):
        item_group_table(LABELS, PREDICTED, {"all": GROUPS["sex"]}, CLASSES)


# Annotators: A1, A2 say F, A3 says M, A4 prefers not to say, A5 did not answer; A6 chose
# two options of a multiple-choice question.
ANNOTATORS = pd.DataFrame(
    {
        "annotator": ["A1", "A2", "A3", "A4", "A5", "A6"],
        "gender": ["F", "F", "M", "prefer_not_to_say", None, None],
        "languages": ['["en", "fr"]', '["en"]', '["fr"]', None, None, '["en", "fr"]'],
    }
).astype({"gender": "string", "languages": "string"})
ANNOTATIONS = pd.DataFrame(
    [
        (1, "A1", "a"),
        (1, "A2", "a"),
        (1, "A3", "b"),
        (1, "A4", "b"),
        (2, "A1", "a"),
        (2, "A2", "b"),
        (2, "A3", "b"),
        (3, "A1", "b"),
        (3, "A3", "a"),
        (3, "A5", "a"),
        (4, "A2", "b"),
        (4, "A4", "a"),
        (99, "A3", "a"),  # not an evaluated item
    ],
    columns=["item_id", "annotator", "label"],
)
ITEM_IDS = [1, 2, 3, 4]
PREDICTED_LABELS = ["a", "b", "a", "b"]


def _by_answer(table: pd.DataFrame, question: str) -> dict[str, dict]:
    rows = table[table["question"] == question]
    return {row["answer"]: row for row in rows.to_dict("records")}


def test_annotator_group_agreement_hand_example_ties_excluded():
    table = annotator_group_agreement(
        ITEM_IDS, PREDICTED_LABELS, ANNOTATIONS, ANNOTATORS, ["gender"], min_group_size=3
    )
    assert tuple(table.columns) == ANNOTATOR_COLUMNS
    gender = _by_answer(table, "gender")
    # "prefer not to say" and no answer form no group.
    assert list(gender) == ["F", "M"]
    # F (A1, A2): item 1 a (model a: yes), item 2 a/b tie (no group view), item 3 b (model
    # a: no), item 4 b (model b: yes) -> 2 of 3.
    assert gender["F"]["annotators"] == 2
    assert (gender["F"]["items"], gender["F"]["tied"]) == (3, 1)
    assert gender["F"]["agreement"] == pytest.approx(2 / 3)
    assert not gender["F"]["small"]
    # M (A3): item 1 b (no), item 2 b (yes), item 3 a (yes); item 99 is not evaluated.
    assert (gender["M"]["annotators"], gender["M"]["items"], gender["M"]["tied"]) == (1, 3, 0)
    assert gender["M"]["agreement"] == pytest.approx(2 / 3)
    # Everyone: item 1 a, a, b, b tie; item 2 b (yes); item 3 a (yes); item 4 b, a tie.
    overall = _by_answer(table, "all")["all"]
    assert (overall["annotators"], overall["items"], overall["tied"]) == (5, 2, 2)
    assert overall["agreement"] == 1.0
    assert overall["small"]  # 2 items < 3
    assert table["question"].tolist() == ["all", "gender", "gender"]


def test_annotator_group_agreement_multiple_choice_answer_in_each_option_group():
    table = annotator_group_agreement(
        ITEM_IDS, PREDICTED_LABELS, ANNOTATIONS, ANNOTATORS, ["languages"]
    )
    languages = _by_answer(table, "languages")
    assert list(languages) == ["en", "fr"]
    # en: A1, A2 (A6 labeled nothing). fr: A1, A3: item 1 a/b tie, item 2 a/b tie, item 3 b/a tie.
    assert languages["en"]["annotators"] == 2
    assert languages["en"]["agreement"] == pytest.approx(2 / 3)
    assert (languages["fr"]["items"], languages["fr"]["tied"]) == (0, 3)
    assert languages["fr"]["agreement"] is None


def test_annotator_group_agreement_unknown_question_raises():
    with pytest.raises(ValueError):
        annotator_group_agreement(ITEM_IDS, PREDICTED_LABELS, ANNOTATIONS, ANNOTATORS, ["age"])
