"""Server-side SVG charts: well-formed, accessible, self-contained, labels escaped."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from compliance.charts import bar_chart_svg, layer_map_svg, stacked_bar_svg

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '</text></svg><script>alert(1)</script><img src="http://attacker.invalid/x"> & "q" \x00\x07'


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def _assert_accessible_and_self_contained(root: ET.Element) -> None:
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and title.text and desc is not None and desc.text
    labelled = root.get("aria-labelledby").split()
    assert labelled == [title.get("id"), desc.get("id")]
    for element in root.iter():
        assert element.tag.split("}")[1] not in {"script", "image", "foreignObject", "use", "a", "style"}
        for name, value in element.attrib.items():
            assert "href" not in name and "url(" not in value and "http" not in value, (name, value)


def _texts(root: ET.Element) -> str:
    return " ".join(t for el in root.iter() for t in [el.text or ""])


@pytest.mark.parametrize(
    "svg",
    [
        bar_chart_svg(title=HOSTILE, items=[(HOSTILE, 3), ("b", 1)]),
        stacked_bar_svg(title=HOSTILE, categories=[HOSTILE, "p2"], series=[(HOSTILE, [1, 2]), ("high", [3])]),
        layer_map_svg(
            title=HOSTILE,
            layers=[{"candidate_layer": HOSTILE, "reference_layer": HOSTILE, "p_value": 1e-9, "statistic": 0.9}],
        ),
    ],
    ids=["bar", "stacked", "layer_map"],
)
def test_hostile_labels_are_text_in_a_well_formed_svg(svg):
    root = _parse(svg)
    _assert_accessible_and_self_contained(root)
    assert "<script>" not in svg and "<img" not in svg
    # The label survives as text (minus the control characters XML forbids).
    assert "<script>alert(1)</script>" in _texts(root)


def test_bar_chart_bars_are_proportional_and_desc_states_the_values():
    root = _parse(bar_chart_svg(title="Findings per project", items=[("A", 10), ("B", 5), ("C", 0)]))
    widths = [float(r.get("width")) for r in root.iter(f"{SVG}rect")]
    assert widths[0] == pytest.approx(2 * widths[1]) and widths[2] == 0
    assert root.find(f"{SVG}desc").text == "A: 10; B: 5; C: 0."


def test_bar_chart_survives_missing_and_non_finite_values():
    root = _parse(bar_chart_svg(title="t", items=[("nan", math.nan), ("inf", math.inf), ("none", None), ("neg", -3), ("ok", 2)]))
    widths = [float(r.get("width")) for r in root.iter(f"{SVG}rect")]
    assert widths[:4] == [0, 0, 0, 0] and widths[4] > 0


def test_empty_charts_say_no_data():
    for svg in (bar_chart_svg(title="t", items=[]), stacked_bar_svg(title="t", categories=[], series=[])):
        root = _parse(svg)
        assert root.find(f"{SVG}desc").text == "No data."


def test_stacked_bar_segments_sum_to_the_total_and_use_severity_colours():
    root = _parse(stacked_bar_svg(title="Open findings", categories=["P1"], series=[("critical", [2]), ("low", [6])]))
    segments = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert [s.get("fill") for s in segments] == ["#7a0019", "#56b4e9"]
    assert float(segments[1].get("width")) == pytest.approx(3 * float(segments[0].get("width")))
    assert "P1: critical 2, low 6 (total 8)" in root.find(f"{SVG}desc").text


def test_layer_map_links_matches_and_marks_unmatched_layers():
    layers = [
        {"candidate_layer": "layers.0", "reference_layer": "blocks.0", "p_value": 1e-40, "statistic": 0.99},
        {"candidate_layer": "layers.1", "reference_layer": "blocks.1", "p_value": 0.0, "statistic": 1.0},
        {"candidate_layer": "layers.2", "reference_layer": None, "p_value": None, "statistic": None},
        {"candidate_layer": "layers.3", "reference_layer": "blocks.10", "p_value": 0.4, "statistic": 0.01},
    ]
    root = _parse(layer_map_svg(title="Lineage", layers=layers, reference_layers=["blocks.0", "blocks.1", "blocks.2", "blocks.10"]))
    _assert_accessible_and_self_contained(root)
    lines = list(root.iter(f"{SVG}line"))
    assert len(lines) == 3  # one per matched layer, none for the unmatched one
    # Significant matches are solid and dark; the p = 0.4 one is dashed.
    assert lines[0].get("stroke-dasharray") is None and lines[1].get("stroke-dasharray") is None
    assert lines[2].get("stroke-dasharray") == "4 3"
    desc = root.find(f"{SVG}desc").text
    assert desc.startswith("2 of 4 Candidate layers match a Reference layer at p < 0.01.")
    assert "layers.2: no matching Reference layer" in desc


def test_layer_map_orders_reference_layers_naturally_and_scales_to_many_layers():
    layers = [{"candidate_layer": i, "reference_layer": f"blocks.{i}", "p_value": 1e-5, "statistic": 0.5} for i in range(200)]
    root = _parse(layer_map_svg(title="Deep model", layers=layers, max_height=900))
    assert float(root.get("height")) <= 1000
    labels = [t.text for t in root.iter(f"{SVG}text") if t.text and t.text.startswith("blocks.")]
    # 200 rows at 4 px: every second label is drawn, in natural order (10 after 8, not after 1).
    assert labels[:6] == ["blocks.0", "blocks.2", "blocks.4", "blocks.6", "blocks.8", "blocks.10"]


def test_same_chart_twice_gets_the_same_ids_and_different_charts_do_not_clash():
    a1 = _parse(bar_chart_svg(title="a", items=[("x", 1)]))
    a2 = _parse(bar_chart_svg(title="a", items=[("x", 1)]))
    b = _parse(bar_chart_svg(title="b", items=[("x", 1)]))
    assert a1.get("id") == a2.get("id") != b.get("id")
