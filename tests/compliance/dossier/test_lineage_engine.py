"""The dossier reads what the lineage engine really writes (format drift would show here)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from compliance.dossier.context import lineage_results_from_summary
from compliance.dossier.render import dossier_html_render
from compliance.dossier.sample import sample_context_build

from compliance.engine import lineage as engine
from tests.compliance.engine.lineage import tinymodels


def test_a_real_lineage_report_becomes_a_layer_map_in_the_dossier(tmp_path):
    base = tinymodels.llama_make(seed=1, layers=4)
    derived = tinymodels.finetune(base, seed=2)
    reference_dir = tinymodels.model_write(base, tmp_path / "base")
    candidate_dir = tinymodels.model_write(derived, tmp_path / "derived")
    report = engine.lineage_compare(candidate=candidate_dir, reference=reference_dir)
    # Round-trip through JSON, as CheckRun.summary stores it.
    summary = json.loads(json.dumps({"references": [report.to_dict()]}))
    (result,) = lineage_results_from_summary(summary)
    # The conclusion opens with the verdict in words (compliance.finding_texts), then the numbers.
    assert report.verdict == "derived"
    assert result.conclusion.startswith("Derived from a reference model — ")
    assert result.p_value == pytest.approx(report.to_dict()["p_value"])
    assert len(result.layers) == len(report.layers) > 0
    assert any(layer.reference_layer is not None for layer in result.layers)

    context = sample_context_build(findings=1)
    context.checks[0].lineage = [result]
    html = dossier_html_render(context=context)
    start = html.index('<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" id="layers-')
    svg = ET.fromstring(html[start : html.index("</svg>", start) + len("</svg>")])
    assert len(list(svg.iter("{http://www.w3.org/2000/svg}line"))) >= 1
