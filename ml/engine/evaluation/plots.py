"""PNG plots of a training run: loss curves, the confusion matrix, per-group bars.

Invariants:

- Drawn on ``matplotlib.figure.Figure`` with the Agg canvas, never through ``pyplot``: no
  global figure registry, no GUI backend, safe in a worker's threads. matplotlib is imported
  inside the functions, so importing this module (and ``ml.engine.evaluation``) stays cheap.
- The same input writes the same bytes: fixed figure sizes and DPI, no "Software" entry in
  the PNG metadata (matplotlib writes no date in a PNG), fonts bundled with matplotlib.
- Text is drawn as given: mathtext is off, so a ``$`` in a class or group name stays a
  dollar sign. Long names are shortened to ``MAX_LABEL_CHARS``.
- Every plot has a title and axis labels; parent folders of ``path`` are created.
"""

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100
MAX_LABEL_CHARS = 24
# The bars plot the largest groups of each key, at most this many (the "all" bar included).
MAX_GROUPS_PLOTTED = 16
TRAIN_COLOR = "#2c5fb8"
VALIDATION_COLOR = "#d9822b"
SMALL_HATCH = "//"


@contextmanager
def _figure(width: float, height: float) -> Iterator["Figure"]:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(
        {
            "text.parse_math": False,
            "font.size": 10,
            "axes.titlesize": 12,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    ):
        figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        yield figure


def _save(figure: "Figure", path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI, metadata={"Software": None})


def _short(text: object) -> str:
    value = str(text)
    return value if len(value) <= MAX_LABEL_CHARS else value[: MAX_LABEL_CHARS - 1] + "…"


def loss_curves_png(history: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Training and validation loss per epoch, the best (lowest validation loss) epoch
    marked. ``history`` rows have ``epoch``, ``train_loss`` and ``val_loss``."""
    from matplotlib.ticker import MaxNLocator

    epochs = [int(row["epoch"]) for row in history]
    with _figure(6.4, 4.0) as figure:
        axes = figure.subplots()
        axes.plot(
            epochs,
            [float(row["train_loss"]) for row in history],
            "o-",
            color=TRAIN_COLOR,
            label="training",
        )
        val_loss = [float(row["val_loss"]) for row in history]
        axes.plot(epochs, val_loss, "s-", color=VALIDATION_COLOR, label="validation")
        if val_loss:
            best = epochs[min(range(len(val_loss)), key=val_loss.__getitem__)]
            axes.axvline(
                best, color="grey", linestyle="--", linewidth=1, label=f"best epoch ({best})"
            )
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title("Loss per epoch")
        axes.set_xlabel("Epoch")
        axes.set_ylabel("Cross-entropy (nats)")
        axes.legend(frameon=False)
        _save(figure, path)


def confusion_png(
    confusion: Sequence[Sequence[int]],
    classes: Sequence[str],
    path: Path,
    *,
    title: str = "Confusion matrix",
) -> None:
    """Counts with true classes as rows and predicted ones as columns; the colour is the
    row share (the recall of the row's class), so rare classes read as well as common
    ones, and each cell prints its count."""
    counts = [[int(value) for value in row] for row in confusion]
    size = len(classes)
    if len(counts) != size or any(len(row) != size for row in counts):
        raise ValueError("confusion must be (C, C) for the C classes.")
    shares = [[value / sum(row) if sum(row) else 0.0 for value in row] for row in counts]
    side = min(3.2 + 0.6 * size, 12.0)
    with _figure(side + 1.2, side) as figure:
        axes = figure.subplots()
        image = axes.imshow(shares or [[0.0]], cmap="Blues", vmin=0.0, vmax=1.0)
        names = [_short(name) for name in classes]
        axes.set_xticks(range(size), names, rotation=40, ha="right")
        axes.set_yticks(range(size), names)
        for row, line in enumerate(counts):
            for column, value in enumerate(line):
                color = "white" if shares[row][column] > 0.6 else "black"
                axes.text(column, row, str(value), ha="center", va="center", color=color)
        axes.set_title(title)
        axes.set_xlabel("Predicted class")
        axes.set_ylabel("True class")
        figure.colorbar(image, ax=axes, fraction=0.05, label="Share of the true class")
        _save(figure, path)


def _largest_groups(block: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The groups of one key to plot, each with its rows by class: the largest
    ``MAX_GROUPS_PLOTTED - 1`` groups, in the table's order."""
    sizes = block.groupby("group_value", sort=False)["n"].first()
    kept = sizes.sort_values(ascending=False, kind="stable").index[: MAX_GROUPS_PLOTTED - 1]
    return [
        (str(value), block[block["group_value"] == value].set_index("class"))
        for value in sizes.index
        if value in set(kept)
    ]


def group_bars_png(table: pd.DataFrame, path: Path, *, metric: str = "error_rate") -> None:
    """One panel per group key of an ``item_group_table``: a bar per (group, class) of
    ``metric``, the whole set first as the reference, groups labelled with their size,
    small groups hatched, undefined values written "n/a"."""
    import matplotlib
    from matplotlib.patches import Patch

    if metric not in ("ppv", "error_rate", "tpr", "fpr"):
        raise ValueError(f"Unknown group metric {metric!r}.")
    overall = table[table["group_key"] == "all"].set_index("class")
    keys = [key for key in dict.fromkeys(table["group_key"]) if key != "all"] or ["all"]
    classes = list(dict.fromkeys(table["class"]))
    colors = [matplotlib.colormaps["tab10"](index % 10) for index in range(len(classes))]
    width = 0.8 / max(len(classes), 1)
    label = metric.replace("_", " ")
    with _figure(10.0, 1.0 + 2.8 * len(keys)) as figure:
        panels = figure.subplots(len(keys), 1, squeeze=False)[:, 0]
        for axes, key in zip(panels, keys, strict=True):
            groups = [("all (whole set)", overall)]
            if key != "all":
                groups += _largest_groups(table[table["group_key"] == key])
            for position, (_, rows) in enumerate(groups):
                for index, name in enumerate(classes):
                    x = position - 0.4 + width * (index + 0.5)
                    height = rows.loc[name, metric]
                    if height is None:
                        axes.text(x, 0.01, "n/a", ha="center", va="bottom", fontsize=7)
                        continue
                    axes.bar(
                        x,
                        float(height),
                        width=width,
                        color=colors[index],
                        hatch=SMALL_HATCH if bool(rows.loc[name, "small"]) else None,
                        edgecolor="white",
                    )
            axes.set_xticks(
                range(len(groups)),
                [f"{_short(value)}\n(n={int(rows['n'].iloc[0])})" for value, rows in groups],
                fontsize=8,
            )
            axes.set_ylim(0.0, 1.0)
            axes.set_title(f"{label.capitalize()} by {key} (hatched: small group)")
            axes.set_xlabel(f"Group ({key})")
            axes.set_ylabel(label)
        handles = [
            Patch(color=color, label=_short(name))
            for color, name in zip(colors, classes, strict=True)
        ]
        figure.legend(
            handles=handles, title="Class", frameon=False, fontsize=8, loc="outside right upper"
        )
        _save(figure, path)
