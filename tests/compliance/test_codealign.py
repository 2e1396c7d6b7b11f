"""The copied-code view pairs each submitted line with the reference line it matches, so one row
never shows different code on its two sides, and shows the similarity the dossier prints."""

from __future__ import annotations

import datetime

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse

from compliance.codealign import region_align
from compliance.models import CheckRun
from tests.factories import signed_submission

REFERENCE = """def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed"""

# The vendor added a comment and a blank line and re-indented one line: a naive side-by-side of
# the two excerpts shifts every line after the insertion against the wrong one.
VENDOR = """def rotate_half(x):
    # split the last dimension in two
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]

    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
      q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed"""


def test_identical_lines_face_each_other_and_insertions_face_a_gap():
    region = region_align(vendor=VENDOR, origin=REFERENCE, vendor_first=40, origin_first=100)
    same = [r for r in region.rows if r.kind == "same"]
    assert all(r.vendor.strip() == r.origin.strip() for r in same)
    assert len(same) == 10, "every reference line finds its vendor line (indentation does not count)"
    comment = next(r for r in region.rows if r.vendor and "split the last" in r.vendor)
    assert comment.kind == "vendor_only" and comment.origin is None and comment.origin_no is None
    # Line numbers are the files' own.
    cat = next(r for r in region.rows if r.vendor and "torch.cat" in r.vendor)
    assert (cat.vendor_no, cat.origin_no) == (45, 103)
    assert region.identical == 10 and region.vendor_lines == 12 and region.origin_lines == 10
    assert round(region.identical_share, 2) == 0.83


def test_a_changed_line_is_paired_and_marked():
    region = region_align(vendor="a = 1\nb = 2\nc = 3", origin="a = 1\nb = 20\nc = 3")
    assert [r.kind for r in region.rows] == ["same", "changed", "same"]
    assert region.rows[1].vendor == "b = 2" and region.rows[1].origin == "b = 20"


@pytest.mark.django_db
def test_the_page_shows_aligned_rows_the_similarity_and_the_whole_region_on_demand(client, world):
    submission = signed_submission(world=world, submit=True)
    run = CheckRun.objects.filter(submission=submission).first()
    long_vendor = VENDOR + "\n" + "\n".join(f"    step_{i} = {i}" for i in range(30))
    long_reference = REFERENCE + "\n" + "\n".join(f"    step_{i} = {i}" for i in range(30))
    code_run = CheckRun.objects.create(
        artifact=run.artifact, submission=submission, check_name="code", state=CheckRun.State.SUCCEEDED,
        queued_at=datetime.datetime(2026, 5, 1, tzinfo=datetime.timezone.utc),
        summary={"matches": [{
            "path": "src/model/rope.py", "lines": [40, 40 + len(long_vendor.split("\n")) - 1],
            "origin": {"name": "transformers", "version": "4.46.0", "path": "models/llama/modeling_llama.py",
                       "lines": [100, 100 + len(long_reference.split("\n")) - 1], "excerpt": long_reference},
            "excerpt": long_vendor, "license_expression": "Apache-2.0", "label": "inference", "score": 40,
            "query_coverage": 0.87, "origin_coverage": 0.05}]})
    client.force_login(world.reviewer)
    page = BeautifulSoup(client.get(reverse("submission-detail", args=[submission.pk])).content.decode(),
                         "html.parser")
    region = page.select_one(f"#region-{code_run.pk}-1")
    assert "Similarity 0.87" in region.get_text(" ")
    preview = region.find("div", class_="region-box", recursive=False).select("tbody tr")
    assert len(preview) == 12, "a short preview first"
    for row in region.select("tr.align-same"):
        cells = row.select("td.code")
        assert cells[0].get_text().strip() == cells[1].get_text().strip()
    full = region.select_one("details.region-full")
    assert full is not None and not full.has_attr("open")
    rows = full.select("table.code-align tbody tr")
    assert len(rows) == len(region_align(vendor=long_vendor, origin=long_reference).rows)
    assert any("step_29" in r.get_text() for r in rows)
