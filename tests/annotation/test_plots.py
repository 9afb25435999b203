"""Inline SVG plots: researcher-written names are escaped, never markup."""

import re

from annotation.analysis.plots import (
    analysis_figures_draw,
    entropy_histogram_svg,
    group_distribution_svg,
    stored_svg,
    xrr_heatmap_svg,
)

HOSTILE = "</script><svg onload=f>"  # short enough not to be truncated


def _group_result(names: list[str]) -> dict:
    return {
        "key": "age_group",
        "status": "done",
        "groups": [
            {
                "group": name,
                "n_annotators": 2,
                "n_labels": 10,
                "alpha": 0.5,
                "distribution": {"a": 0.25, "b": 0.75},
            }
            for name in names
        ],
        "pairs": [{"group_a": names[0], "group_b": names[1], "xrr": 0.3, "n_shared_items": 5}],
    }


def _tags(svg: str) -> set[str]:
    return set(re.findall(r"<\s*([a-zA-Z][\w:-]*)", svg))


def test_group_distribution_svg_hostile_category_and_group_names_escaped():
    categories = [{"value": "a", "label": HOSTILE}, {"value": "b", "label": "$5 & <b>co</b>"}]

    svg = str(
        group_distribution_svg(result=_group_result([HOSTILE, "25-34"]), categories=categories)
    )

    assert svg.startswith("<svg")
    assert "<script" not in svg.lower()
    assert "&lt;/script&gt;&lt;svg onload=f&gt;" in svg
    assert "&lt;b&gt;co&lt;/b&gt;" in svg
    assert "$5 &amp;" in svg  # mathtext off: the dollar sign stays text
    assert svg.count("<svg") == 1
    assert "script" not in _tags(svg) and "b" not in _tags(svg)


def test_xrr_heatmap_svg_hostile_group_name_escaped():
    svg = str(xrr_heatmap_svg(result=_group_result([HOSTILE, "prefer_not_to_say"])))

    assert svg.count("<svg") == 1
    assert "&lt;/script&gt;" in svg
    assert "Prefer not to say" in svg
    assert "script" not in _tags(svg)


def test_entropy_histogram_svg_is_inline_svg_without_xml_prolog():
    histogram = [{"low": i / 10, "high": (i + 1) / 10, "items": i} for i in range(10)]

    svg = str(entropy_histogram_svg(histogram=histogram))

    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "<?xml" not in svg and "DOCTYPE" not in svg


def test_analysis_figures_draw_hostile_names_escaped_in_every_stored_plot():
    summary = {
        "categories": [{"value": "a", "label": HOSTILE}, {"value": "b", "label": "B"}],
        "entropy_histogram": [{"low": 0.0, "high": 0.1, "items": 2}],
    }
    groups = {
        "age_group": _group_result([HOSTILE, "25-34"]),
        "gender": {"key": "gender", "status": "skipped", "message": "one group"},
    }

    figures = analysis_figures_draw(summary=summary, groups=groups)

    assert set(figures["groups"]) == {"age_group"}
    stored = [figures["entropy"], *figures["groups"]["age_group"].values()]
    for svg in stored:
        assert svg.startswith("<svg") and svg.count("<svg") == 1
        assert "script" not in _tags(svg)
    assert "&lt;/script&gt;" in figures["groups"]["age_group"]["distribution"]


def test_stored_svg_reads_inline_svg_anything_else_empty():
    svg = str(entropy_histogram_svg(histogram=[{"low": 0.0, "high": 0.1, "items": 1}]))
    figures = {"entropy": svg, "groups": {"q": {"heatmap": "<script>alert(1)</script>"}}}

    assert stored_svg(figures, "entropy") == svg
    assert stored_svg(figures, "groups", "q", "heatmap") == ""
    assert stored_svg(figures, "groups", "missing", "heatmap") == ""
    assert stored_svg({}, "entropy") == "" and stored_svg(None, "entropy") == ""
