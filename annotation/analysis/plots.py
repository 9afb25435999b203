"""Server-side plots of an agreement analysis, as inline SVG made by matplotlib.

Figures are built with ``matplotlib.figure.Figure`` and never through ``pyplot``: no global
figure registry to leak figures from, no GUI backend, safe in threads (matplotlib's advice
for web servers). Nothing here draws on screen, so no backend has to be selected; SVG
output uses matplotlib's own SVG writer.

The SVG is marked safe for templates, and only SVG made here may be: it is drawn from
numbers and from category and group names, which researchers write. matplotlib escapes
every text it writes into SVG (``<``, ``>``, ``&`` and quotes), mathtext parsing is off (a
``$`` in a name stays a dollar sign), and text is kept as SVG text elements so that it
stays readable and searchable. ``tests/annotation/test_plots.py`` proves the escaping.

An analysis's plots are drawn once, when it is computed (``analysis_figures_draw``, called
by ``annotation.analysis.service``), and stored with it in ``AgreementAnalysis.figures``;
pages read them back with ``stored_svg``. That field is written by nothing else, so what it holds is
SVG made here and may be marked safe again on the way out.
"""

import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib
from django.utils.safestring import SafeString, mark_safe
from matplotlib.figure import Figure

from annotation.agreement import MISSING_GROUP
from annotation.surveys import PREFER_NOT_TO_SAY, PREFER_NOT_TO_SAY_LABEL

MAX_GROUPS_PLOTTED = 12
MAX_LABEL_CHARS = 24
BAR_COLOR = "#2c5fb8"


@contextmanager
def _style() -> Iterator[None]:
    with matplotlib.rc_context(
        {
            "svg.fonttype": "none",
            "text.parse_math": False,
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    ):
        yield


def group_display_name(name: str) -> str:
    """A group as people read it: the core's placeholders spelled out."""
    if name == PREFER_NOT_TO_SAY:
        return PREFER_NOT_TO_SAY_LABEL
    if name == MISSING_GROUP:
        return "No answer"
    return name


def _short(text: object) -> str:
    value = str(text)
    return value if len(value) <= MAX_LABEL_CHARS else value[: MAX_LABEL_CHARS - 1] + "…"


def _svg(figure: Figure, title: str) -> SafeString:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Title": title})
    text = buffer.getvalue()
    # The XML prolog and doctype are not allowed inside HTML; the <svg> element is.
    svg = text[text.index("<svg") :]
    return mark_safe(svg)  # noqa: S308 - matplotlib SVG of numbers and escaped names, see above


def entropy_histogram_svg(*, histogram: Sequence[dict[str, Any]]) -> SafeString:
    """Bars: how many items fall in each tenth of normalised label entropy."""
    with _style():
        figure = Figure(figsize=(6.4, 2.8), layout="constrained")
        axes = figure.subplots()
        lows = [float(row["low"]) for row in histogram]
        widths = [float(row["high"]) - float(row["low"]) for row in histogram]
        counts = [int(row["items"]) for row in histogram]
        axes.bar(lows, counts, width=widths, align="edge", color=BAR_COLOR, edgecolor="white")
        axes.set_xlim(0, 1)
        axes.set_xlabel("Label entropy (0 = everyone agrees, 1 = labels spread evenly)")
        axes.set_ylabel("Items")
        return _svg(figure, "Per-item label entropy")


def _plotted_groups(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The groups with the most labels (at most ``MAX_GROUPS_PLOTTED``), in the result's
    order, which is the survey's order of answers: an age scale reads left to right."""
    groups = list(result.get("groups") or [])
    largest = sorted(groups, key=lambda group: -int(group.get("n_labels") or 0))
    kept = {id(group) for group in largest[:MAX_GROUPS_PLOTTED]}
    return [group for group in groups if id(group) in kept]


def group_distribution_svg(
    *, result: dict[str, Any], categories: Sequence[dict[str, str]]
) -> SafeString:
    """Grouped bars: each group's share of labels per category, groups side by side."""
    groups = _plotted_groups(result)
    with _style():
        figure = Figure(figsize=(6.4, 3.4), layout="constrained")
        axes = figure.subplots()
        n_groups = max(len(groups), 1)
        width = 0.8 / n_groups
        positions = range(len(categories))
        colors = matplotlib.colormaps["tab20"]
        for index, group in enumerate(groups):
            shares = [
                float(group["distribution"].get(category["value"]) or 0.0)
                for category in categories
            ]
            axes.bar(
                [p - 0.4 + width * (index + 0.5) for p in positions],
                shares,
                width=width,
                color=colors(index % 20),
                label=f"{_short(group_display_name(group['group']))} (n={group['n_annotators']})",
            )
        axes.set_xticks(list(positions), [_short(c["label"]) for c in categories])
        axes.set_ylabel("Share of the group's labels")
        axes.set_ylim(0, 1)
        if groups:
            figure.legend(fontsize=8, frameon=False, loc="outside right upper")
        return _svg(figure, f"Label distribution by {result.get('key', '')}")


def xrr_heatmap_svg(*, result: dict[str, Any]) -> SafeString:
    """Heat map: cross-group agreement (xRR) off the diagonal, within-group alpha on it."""
    groups = _plotted_groups(result)
    names = [group["group"] for group in groups]
    position = {name: index for index, name in enumerate(names)}
    size = len(names)
    matrix: list[list[float | None]] = [[None] * size for _ in range(size)]
    for index, group in enumerate(groups):
        matrix[index][index] = group.get("alpha")
    for pair in result.get("pairs") or []:
        a, b = position.get(pair["group_a"]), position.get(pair["group_b"])
        if a is not None and b is not None:
            matrix[a][b] = matrix[b][a] = pair.get("xrr")
    with _style():
        side = 1.6 + 0.55 * max(size, 1)
        figure = Figure(figsize=(side + 1.6, side), layout="constrained")
        axes = figure.subplots()
        values = [[float("nan") if v is None else float(v) for v in row] for row in matrix]
        image = axes.imshow(values or [[float("nan")]], cmap="RdYlBu", vmin=-1.0, vmax=1.0)
        labels = [_short(group_display_name(name)) for name in names]
        axes.set_xticks(range(size), labels, rotation=40, ha="right")
        axes.set_yticks(range(size), labels)
        for row, line in enumerate(matrix):
            for column, value in enumerate(line):
                text = "n/a" if value is None else f"{value:.2f}"
                # Light text on the saturated ends of the colour scale, dark text elsewhere.
                color = "white" if value is not None and abs(value) > 0.6 else "black"
                axes.text(column, row, text, ha="center", va="center", fontsize=8, color=color)
        figure.colorbar(image, ax=axes, fraction=0.05, label="agreement (1 = perfect, 0 = chance)")
        return _svg(figure, f"Cross-group agreement by {result.get('key', '')}")


def analysis_figures_draw(
    *, summary: Mapping[str, Any], groups: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Every plot of an analysis result, as stored in ``AgreementAnalysis.figures``.

    ``{"entropy": svg, "groups": {question key: {"distribution": svg, "heatmap": svg}}}``:
    the entropy histogram is "" without contested items, and only questions whose group
    comparison is done have plots. Categories are the result's own (``summary["categories"]``,
    what the page's legend shows), not the schema's at reading time.
    """
    categories = list(summary.get("categories") or [])
    histogram = list(summary.get("entropy_histogram") or [])
    return {
        "entropy": str(entropy_histogram_svg(histogram=histogram)) if histogram else "",
        "groups": {
            key: {
                "distribution": str(
                    group_distribution_svg(result=dict(result), categories=categories)
                ),
                "heatmap": str(xrr_heatmap_svg(result=dict(result))),
            }
            for key, result in groups.items()
            if result.get("status") == "done"
        },
    }


def stored_svg(figures: object, *path: str) -> SafeString:
    """The stored plot at ``path`` in ``AgreementAnalysis.figures``, ready for a template.

    Marked safe again because only ``analysis_figures_draw`` fills that field (see the
    module docstring); anything that is not an inline ``<svg>`` element (a missing plot, a
    row stored before plots were) reads as "", which templates leave out.
    """
    found: object = figures
    for key in path:
        found = found.get(key) if isinstance(found, dict) else None
    if isinstance(found, str) and found.startswith("<svg") and found.rstrip().endswith("</svg>"):
        return mark_safe(found)  # noqa: S308 - SVG drawn by this module, see above
    return SafeString("")
