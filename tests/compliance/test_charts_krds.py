"""Charts in the KRDS look: token colours and font, readable without colour (greyscale print)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from compliance.charts import KRDS_TOKENS, SERIES_PATTERNS, _relative_luminance, bar_chart_svg, stacked_bar_svg

SVG = "{http://www.w3.org/2000/svg}"


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_relative_luminance(a), _relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_charts_use_the_krds_typeface_and_text_colour():
    root = ET.fromstring(bar_chart_svg(title="Projects by status", items=[("Active", 3)]))
    assert root.get("font-family").startswith("'Pretendard GOV'")
    assert root.get("fill") == KRDS_TOKENS["krds-color-light-gray-90"]
    bar = next(root.iter(f"{SVG}rect"))
    assert bar.get("fill") == KRDS_TOKENS["krds-color-light-primary-60"]
    # WCAG AA for the chart's text on the page's white.
    assert _contrast(root.get("fill"), "#ffffff") >= 4.5


def test_stacked_series_differ_by_pattern_and_carry_their_numbers():
    svg = stacked_bar_svg(title="Open findings", categories=["P1"],
                          series=[("critical", [20]), ("high", [20]), ("medium", [20]), ("low", [20])])
    root = ET.fromstring(svg)
    segments = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(segments) == 4
    # Every series but the first is hatched (lines drawn inside its segment and legend swatch).
    hatches = [g for g in root.iter(f"{SVG}g") if g.get("stroke") == "#ffffff"]
    assert len(hatches) == 2 * (len(SERIES_PATTERNS) - 1)
    # Each segment is wide enough for its count, which is drawn in it with at least 3:1 contrast
    # against the segment's colour.
    fills = [s.get("fill") for s in segments]
    numbers = [t for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "middle"]
    assert [t.text for t in numbers] == ["20"] * 4
    for text, fill in zip(numbers, fills):
        assert _contrast(text.get("fill"), fill) >= 3.0, (text.get("fill"), fill)
