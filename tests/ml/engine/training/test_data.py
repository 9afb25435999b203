"""Examples read from a bundle written in the test, for each target and modality."""

from typing import Any

import numpy as np
import pytest

from ml.engine.training.data import examples_from_bundle
from tests.ml.engine.training.doubles import CLASSES, Item, image_items, write_bundle


def _items() -> list[Item]:
    def item(item_id: int, split: str, votes: tuple[str, ...], **metadata: object) -> Item:
        return Item(item_id, split, f"text {item_id}", votes, metadata)

    return [
        item(3, "train", ("pos", "pos", "neg"), gender="F"),
        item(1, "train", ("neg", "neg", "neg"), gender="M"),
        item(2, "train", ("pos", "neg", "")),  # tied: majority drawn, flagged
        item(4, "train", ("", "", "")),  # no labels at all
        item(5, "validation", ("pos", "pos", "pos")),
        item(6, "test", ("pos", "neg", "")),  # tied: no hard label, but a distribution
        item(7, "test", ("neg", "neg", "pos")),
        item(8, "test", ("", "", "")),  # nothing to evaluate against
    ]


def test_examples_majority_train_drops_tied_and_unlabelled_rows(tmp_path):
    root = write_bundle(tmp_path, _items())
    examples = examples_from_bundle(
        root, "train", classes=CLASSES, target="majority", modality="text"
    )
    assert examples.item_ids.tolist() == [1, 3]  # sorted by item id
    assert examples.inputs == ["text 1", "text 3"]
    assert examples.labels.tolist() == [0, 1]
    np.testing.assert_array_equal(examples.targets, [[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(examples.soft, [[1.0, 0.0], [1 / 3, 2 / 3]], rtol=1e-6)
    assert examples.targets.dtype == np.float32 and examples.soft.dtype == np.float32
    assert examples.metadata == [{"gender": "M"}, {"gender": "F"}]


def test_examples_soft_train_keeps_tied_rows_with_their_distribution(tmp_path):
    root = write_bundle(tmp_path, _items())
    examples = examples_from_bundle(root, "train", classes=CLASSES, target="soft", modality="text")
    assert examples.item_ids.tolist() == [1, 2, 3]
    np.testing.assert_allclose(
        examples.targets, [[1.0, 0.0], [0.5, 0.5], [1 / 3, 2 / 3]], rtol=1e-6
    )
    assert examples.labels.tolist() == [0, -1, 1]  # the mode; none when shared


def test_examples_dawid_skene_uses_its_own_labels(tmp_path):
    root = write_bundle(tmp_path, _items())
    examples = examples_from_bundle(
        root, "train", classes=CLASSES, target="dawid_skene", modality="text"
    )
    # The double's Dawid-Skene breaks the tie of item 2 the other way from the majority.
    assert examples.item_ids.tolist() == [1, 2, 3]
    assert examples.labels.tolist() == [0, 1, 1]


@pytest.mark.parametrize("target", ["majority", "dawid_skene", "soft"])
def test_examples_test_split_keeps_rows_with_a_label_or_a_distribution(tmp_path, target):
    root = write_bundle(tmp_path, _items())
    examples = examples_from_bundle(root, "test", classes=CLASSES, target=target, modality="text")
    assert examples.item_ids.tolist() == [6, 7]
    np.testing.assert_allclose(examples.soft, [[0.5, 0.5], [2 / 3, 1 / 3]], rtol=1e-6)
    assert examples.labels[1] == 0
    if target != "dawid_skene":
        assert examples.labels[0] == -1
        assert examples.targets[0].tolist() == ([0.5, 0.5] if target == "soft" else [0.0, 0.0])


def test_examples_without_soft_labels_have_nan_soft_rows(tmp_path):
    root = write_bundle(tmp_path, _items(), drop=["soft_label"])
    examples = examples_from_bundle(
        root, "validation", classes=CLASSES, target="majority", modality="text"
    )
    assert examples.item_ids.tolist() == [5]
    assert np.isnan(examples.soft).all()
    with pytest.raises(ValueError, match="soft_label"):
        examples_from_bundle(root, "train", classes=CLASSES, target="soft", modality="text")


def test_examples_image_paths_are_absolute_inside_the_bundle(tmp_path):
    root = write_bundle(tmp_path, image_items(tmp_path), modality="image")
    examples = examples_from_bundle(
        root, "test", classes=CLASSES, target="majority", modality="image"
    )
    assert len(examples) == 6
    assert all(path.startswith(str(tmp_path.resolve())) for path in examples.inputs)
    assert examples.inputs[0].endswith("images/0017.png")


def test_examples_image_path_leaving_the_bundle_raises_value_error(tmp_path):
    items = [Item(1, "train", "../../etc/passwd", ("pos",) * 3, {})]
    root = write_bundle(tmp_path, items, modality="image")
    with pytest.raises(ValueError, match="leaves the bundle"):
        examples_from_bundle(root, "train", classes=CLASSES, target="majority", modality="image")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "unanimous"}, "Unknown target"),
        ({"split": "holdout"}, "Unknown split"),
        ({"modality": "image"}, "not a image bundle"),
        ({"classes": ("neg",)}, "two classes"),
        ({"classes": ("neg", "neg")}, "distinct"),
        ({"classes": ("neg", "pos", "meh")}, "soft_label of 2 values; the schema has 3"),
        ({"classes": ("negative", "positive")}, "not one of the classes"),
    ],
)
def test_examples_bad_input_raises_value_error(tmp_path, kwargs, message):
    root = write_bundle(tmp_path, _items())
    arguments: dict[str, Any] = {
        "split": "train",
        "classes": CLASSES,
        "target": "majority",
        "modality": "text",
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        examples_from_bundle(root, **arguments)


def test_examples_bundle_without_the_target_column_raises_value_error(tmp_path):
    root = write_bundle(tmp_path, _items(), drop=["dawid_skene", "dawid_skene_confidence"])
    with pytest.raises(ValueError, match="'dawid_skene' column"):
        examples_from_bundle(root, "train", classes=CLASSES, target="dawid_skene", modality="text")


def test_examples_missing_split_file_raises_value_error(tmp_path):
    with pytest.raises(ValueError, match="no data/train.parquet"):
        examples_from_bundle(tmp_path, "train", classes=CLASSES, target="majority", modality="text")
