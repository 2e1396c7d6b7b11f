"""SPDX expression validation for policy forms (``license-expression`` does the parsing)."""

from __future__ import annotations

from functools import lru_cache

from license_expression import ExpressionError, get_spdx_licensing


@lru_cache(maxsize=1)
def _licensing():
    return get_spdx_licensing()


def spdx_expression_problem(expression: str) -> str | None:
    """None when the expression is valid SPDX (LicenseRef-… keys allowed), else why not."""
    try:
        parsed = _licensing().parse(expression, validate=False, strict=False)
    except ExpressionError as exc:
        return f"{expression!r}: {exc}"
    if parsed is None:
        return f"{expression!r}: empty expression"
    unknown = [key for key in _licensing().unknown_license_keys(parsed) if not key.startswith("LicenseRef-")]
    if unknown:
        return f"{expression!r}: unknown licence identifier(s) {', '.join(sorted(unknown))}"
    return None


def spdx_lines_validate(text: str) -> list[str]:
    """Validate one expression per line; returns the problems, empty when all are valid."""
    problems = []
    for line in (text or "").splitlines():
        line = line.strip()
        if line:
            problem = spdx_expression_problem(line)
            if problem:
                problems.append(problem)
    return problems
