"""Code provenance: winnowing fingerprints of reference code and copy detection.

Public API:
    code_index_add(*, index_dir, source, name, version=None, license_expression=None) -> ReferenceIndexSummary
    code_scan(*, source, index_dir, matcher=None, packages=None) -> CodeScanResult
    CodeMatcher(index_dir=..., packages=None).file_match(path=..., text=...) -> list[CodeMatch]
    (packages: (name, version) pairs to scan against; None: every indexed package)
"""

from compliance.engine.codematch.index import DEFAULT_INDEX_DIR, ReferenceIndexSummary, code_index_add
from compliance.engine.codematch.labels import code_label
from compliance.engine.codematch.scan import CodeMatch, CodeMatcher, CodeScanResult, MatchOrigin, code_scan
from compliance.engine.codematch.tokens import code_tokens
from compliance.engine.codematch.winnow import K_GRAM, WINDOW, fingerprints_compute

__all__ = [
    "DEFAULT_INDEX_DIR", "K_GRAM", "WINDOW", "CodeMatch", "CodeMatcher", "CodeScanResult", "MatchOrigin",
    "ReferenceIndexSummary", "code_index_add", "code_label", "code_scan", "code_tokens", "fingerprints_compute",
]
