"""Plots write PNGs that Pillow opens, the same bytes for the same input, with no software
or date in their metadata."""

from PIL import Image

from ml.engine.evaluation.groups import intersection_groups, item_group_table
from ml.engine.evaluation.plots import confusion_png, group_bars_png, loss_curves_png

HISTORY = [
    {"epoch": 1.0, "train_loss": 1.1, "val_loss": 1.0, "val_accuracy": 0.4, "seconds": 0.1},
    {"epoch": 2.0, "train_loss": 0.8, "val_loss": 0.7, "val_accuracy": 0.6, "seconds": 0.1},
    {"epoch": 3.0, "train_loss": 0.6, "val_loss": 0.75, "val_accuracy": 0.6, "seconds": 0.1},
]
CLASSES = ["positive", "negative", "a $rather$ long class name"]


def _table():
    labels = [0, 0, 1, 1, 2, 2, 0, 1]
    predicted = [0, 1, 1, 1, 2, 0, 0, 2]
    groups: dict[str, list[object]] = {
        "sex": ["F", "F", "F", "M", "M", "M", None, "F"],
        "skin": ["darker", "lighter", "darker", "lighter", "darker", "lighter", "darker", "x"],
    }
    groups |= intersection_groups(groups, "sex", "skin")
    return item_group_table(labels, predicted, groups, CLASSES, min_group_size=3)


def _draw_twice(draw, tmp_path, name):
    first, second = tmp_path / "one" / name, tmp_path / "two" / name
    draw(first)
    draw(second)
    return first, second


def _assert_png(first, second, min_width=400):
    data = first.read_bytes()
    assert data == second.read_bytes()
    with Image.open(first) as image:
        assert image.format == "PNG"
        assert image.size[0] >= min_width and image.size[1] >= 300
        assert "Software" not in image.info
        assert not any(
            "date" in str(key).lower() or "time" in str(key).lower() for key in image.info
        )


def test_loss_curves_png_opens_and_repeats_byte_for_byte(tmp_path):
    first, second = _draw_twice(lambda path: loss_curves_png(HISTORY, path), tmp_path, "loss.png")
    _assert_png(first, second)


def test_confusion_png_opens_and_repeats_byte_for_byte(tmp_path):
    confusion = [[5, 1, 0], [2, 7, 1], [0, 0, 0]]
    first, second = _draw_twice(
        lambda path: confusion_png(confusion, CLASSES, path), tmp_path, "confusion.png"
    )
    _assert_png(first, second)


def test_group_bars_png_opens_and_repeats_byte_for_byte(tmp_path):
    table = _table()
    first, second = _draw_twice(lambda path: group_bars_png(table, path), tmp_path, "groups.png")
    _assert_png(first, second)
    other = tmp_path / "tpr.png"
    group_bars_png(table, other, metric="tpr")
    assert other.read_bytes() != first.read_bytes()


def test_plots_differ_when_input_differs(tmp_path):
    loss_curves_png(HISTORY, tmp_path / "a.png")
    loss_curves_png(HISTORY[:2], tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "b.png").read_bytes()
