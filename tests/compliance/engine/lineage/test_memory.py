"""The lineage test's memory savings change no answer (issue #16).

A reference read from a compact bundle keeps its rows packed and its test rows as float16, and the
candidate keeps its test rows as float16. The oracle is the representation before that change:
every reference's rows dequantised and held, test rows held as float32 (computed the way the
engine computed them then). The full reports of both, from the registry screen to Holm, must be
the same to the last bit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from compliance.engine.lineage import Fingerprint, fingerprint_build, fingerprint_load, fingerprint_save, lineage_test_against
from compliance.engine.lineage import compare as compare_module
from compliance.engine.lineage.fingerprint import FamilyRows
from compliance.engine.lineage.stats import column_split, rows_prepare, rows_standardise
from tests.compliance.engine.lineage import tinymodels as tm


def _test_rows_float32(rows: np.ndarray) -> np.ndarray:
    """fingerprint._test_rows as it was before the change: float32 values rounded through float16."""
    x = np.array(rows, dtype=np.float32)
    x -= x.mean(axis=0, keepdims=True)
    x /= np.maximum(np.sqrt(np.mean(x * x, axis=0, keepdims=True)), 1e-20)
    return rows_standardise(x[:, column_split(x.shape[1])[1]]).astype(np.float16).astype(np.float32)


def _held_as_before(fp: Fingerprint) -> Fingerprint:
    """`fp` with every family's rows dequantised and held, and (sketch, test) held as float32."""
    for part in fp.component_prints().values():
        for lp in part.layers.values():
            for family, fr in list(lp.families.items()):
                rows = np.array(fr.rows)
                held = FamilyRows(rows=rows, hashes=fr.hashes, blocks=fr.blocks, stored_sketch=fr.stored_sketch)
                if fr.stored_sketch is not None:
                    held._prepared = (np.asarray(fr.stored_sketch, dtype=np.float32), _test_rows_float32(rows))
                else:
                    sketch, test = rows_prepare(rows)
                    held._prepared = (sketch.astype(np.float32), test.astype(np.float32))
                lp.families[family] = held
    return fp


def _report_text(reports) -> str:
    """Every number of every report, unrounded (p-values, effect sizes, bytes read, layer maps)."""
    return json.dumps([{**r.to_dict(), "p_value": r.p_value, "p_value_raw": r.p_value_raw,
                        "effect_size": r.effect_size} for r in reports], sort_keys=True, default=repr)


@pytest.fixture(scope="module")
def registry(llama_print: Fingerprint, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The parent and five independent models of its shape, as compact bundles: six references,
    so the registry screen runs before the full test (screen.SCREEN_MIN_REFERENCES is 5)."""
    root = tmp_path_factory.mktemp("registry")
    paths = [fingerprint_save(llama_print, root / "parent.lineage")]
    for seed in range(700, 705):
        fp = fingerprint_build(path=tm.model_write(tm.llama_make(seed=seed), root / f"m{seed}"))
        paths.append(fingerprint_save(fp, root / f"decoy-{seed}.lineage"))
    return paths


CANDIDATES = {
    "fine-tune": lambda m, d: tm.model_write(tm.finetune(m, seed=81), d),
    # The residual re-alignment re-reads the candidate's rows (FamilyRows.realigned).
    "residual basis permuted + fine-tuned": lambda m, d: tm.model_write(
        tm.finetune(tm.residual_permute(m, seed=82), seed=83), d),
    "independent": lambda m, d: tm.model_write(tm.llama_make(seed=84), d),
}


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_reports_are_identical_to_holding_every_array_in_float32(name, llama_base, registry, tmp_path, monkeypatch):
    path = CANDIDATES[name](llama_base, tmp_path / "cand")
    reports = lineage_test_against(candidate=fingerprint_build(path=path), references=registry)

    def load_as_before(reference, **kwargs):
        return _held_as_before(fingerprint_load(reference, **kwargs))

    monkeypatch.setattr(compare_module, "fingerprint_load", load_as_before)
    before = lineage_test_against(candidate=_held_as_before(fingerprint_build(path=path)), references=registry)
    assert sum(r.verdict != "not_tested" for r in reports) >= 3  # screened, and the full test ran
    assert _report_text(reports) == _report_text(before)
    if name != "independent":
        assert reports[0].verdict == "derived"
    if name.startswith("residual"):
        assert reports[0].evidence["residual_alignment"]["applied"]


def test_a_loaded_reference_holds_its_rows_packed_and_its_test_rows_in_float16(llama_base, registry, tmp_path):
    reference = fingerprint_load(registry[0])
    candidate = fingerprint_build(path=tm.model_write(tm.finetune(llama_base, seed=85), tmp_path / "cand"))
    assert compare_module.lineage_compare(candidate=candidate, reference=reference).verdict == "derived"
    for fp in (reference, candidate):
        for lp in fp.layers.values():
            for fr in lp.families.values():
                assert fr.test.dtype == np.float16
    for lp in reference.layers.values():
        for fr in lp.families.values():
            assert fr._rows is None and fr.packed is not None
            levels, width = fr.packed
            # 4-bit levels, two a byte: a quarter of the float16 rows the reference used to hold.
            assert levels.nbytes == fr.n_rows * math.ceil(width / 2)
            assert fr.rows.shape == (fr.n_rows, width) and fr.rows.dtype == np.float16


def _paired_rows_prep_out_of_place(x: np.ndarray) -> np.ndarray:
    """stats.paired_rows_test's row preparation as it was before it worked in place."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    x = x / np.maximum(np.sqrt((x**2).mean(axis=0, keepdims=True)), 1e-12)
    return rows_standardise(x).astype(np.float32)


def test_the_embedding_test_gives_the_bits_of_the_out_of_place_float32_arithmetic(llama_print):
    """The embedding family's test now takes float16 rows as stored and prepares them in place:
    the same z and p-value, to the bit, as casting to float32 first and preparing out of place."""
    from compliance.engine.lineage.stats import paired_rows_test

    rows = llama_print.embedding_rows
    assert rows.dtype == np.float16
    rng = np.random.default_rng(5)
    other = (rows.astype(np.float32) + 0.5 * rng.standard_normal(rows.shape, dtype=np.float32)).astype(np.float16)
    a, b = _paired_rows_prep_out_of_place(rows.astype(np.float32)), _paired_rows_prep_out_of_place(other.astype(np.float32))
    pair = np.einsum("ij,ij->i", a, b)
    var = float(np.sum((a @ a.T).astype(np.float64) * (b @ b.T))) / (a.shape[1] - 1)
    result = paired_rows_test(rows, other)
    assert result.z == float(pair.sum()) / math.sqrt(var)
    assert result.statistic == float(pair.mean())
