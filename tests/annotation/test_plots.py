"""Inline SVG plots: researcher-written names are escaped, never markup."""

import re

from annotation.plots import entropy_histogram_svg, group_distribution_svg, xrr_heatmap_svg

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
