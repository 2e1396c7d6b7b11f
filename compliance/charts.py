"""Server-side SVG charts shared by the dashboard (HTML) and the dossier (PDF).

Pure Python, no Django: every function takes plain data and returns one
self-contained ``<svg>`` element as a string, ready to be inlined with
``|safe`` (the string is built here with every label escaped, so it is safe to
mark safe) or written to a file.

What every chart guarantees:
- accessible: ``role="img"``, a ``<title>`` and a ``<desc>`` that states the
  data in words (screen readers and text extraction see the numbers, not just
  a picture), both linked through ``aria-labelledby``;
- no external references: no ``href``, no ``url(...)``, no fonts or images
  fetched, so a strict URL fetcher (the dossier) has nothing to refuse;
- labels escaped for XML and stripped of characters XML 1.0 forbids, so a
  vendor-chosen project name such as ``</svg><script>`` is shown literally and
  the SVG still parses;
- vectors with a ``viewBox`` so they scale to the column width in HTML and
  print sharply in the PDF.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any, Iterable, Sequence

__all__ = [
    "SEVERITY_COLORS",
    "bar_chart_svg",
    "stacked_bar_svg",
    "layer_map_svg",
    "svg_text_escape",
]

# KRDS 1.1.0 design tokens the charts use, by their KRDS names (static/vendor/krds/css/token/
# krds_tokens.css). Defined once here: the dashboard's SVG and the dossier's cover and headers
# take their colours from this table, so a KRDS update is one edit. Text colours are at least
# 6:1 on white (gray-90 is 16.1:1, gray-70 9.4:1, gray-60 6.3:1), above WCAG AA's 4.5:1.
KRDS_TOKENS: dict[str, str] = {
    "krds-color-light-gray-0": "#ffffff",
    "krds-color-light-gray-5": "#f4f5f6",
    "krds-color-light-gray-20": "#cdd1d5",
    "krds-color-light-gray-60": "#58616a",
    "krds-color-light-gray-70": "#464c53",
    "krds-color-light-gray-90": "#1e2124",
    "krds-color-light-primary-60": "#0b50d0",
    "krds-color-light-secondary-70": "#063a74",
    "krds-color-light-secondary-80": "#052b57",
    "krds-color-light-danger-70": "#8a240f",
    "krds-color-light-success-60": "#267337",
    "krds-color-light-information-50": "#0b78cb",
    "krds-color-light-point-50": "#d63d4a",
    "krds-color-light-warning-30": "#ffb114",
    "krds-typo-font-type": "Pretendard GOV",
}
TEXT_COLOR = KRDS_TOKENS["krds-color-light-gray-90"]
MUTED_TEXT_COLOR = KRDS_TOKENS["krds-color-light-gray-70"]
BAR_COLOR = KRDS_TOKENS["krds-color-light-primary-60"]
_SUBTLE_COLOR = KRDS_TOKENS["krds-color-light-gray-60"]

# Severities keep their Okabe-Ito derived palette (the dossier and its tests use the same):
# distinguishable with the three common colour vision deficiencies. Colour is never the only
# carrier: each series also has a fill pattern (SERIES_PATTERNS), segments wide enough carry
# their number, and the legend and <desc> give the values, so a greyscale print still reads.
SEVERITY_COLORS: dict[str, str] = {
    "critical": "#7a0019",
    "high": "#d55e00",
    "medium": "#e69f00",
    "low": "#56b4e9",
    "info": "#999999",
}
# Other series: KRDS hues, alternating dark and light so neighbours differ in greyscale too.
_FALLBACK_COLORS = [
    KRDS_TOKENS["krds-color-light-primary-60"], KRDS_TOKENS["krds-color-light-warning-30"],
    KRDS_TOKENS["krds-color-light-success-60"], KRDS_TOKENS["krds-color-light-point-50"],
    KRDS_TOKENS["krds-color-light-secondary-80"], KRDS_TOKENS["krds-color-light-information-50"],
    KRDS_TOKENS["krds-color-light-danger-70"], KRDS_TOKENS["krds-color-light-gray-20"],
]
# Hatching drawn as plain lines inside each segment (an SVG <pattern> would need url(#id),
# which the dossier's fetcher and the charts' self-containment rule refuse): series i gets
# SERIES_PATTERNS[i % 4].
SERIES_PATTERNS = ("solid", "vertical", "horizontal", "grid")

# PretendardGOV first (KRDS's typeface, served by the portal), NanumGothic for the Hangul the
# PretendardGOV subset lacks; the dossier passes its own embedded family instead.
_FONT_FAMILY = "'Pretendard GOV', NanumGothic, 'Nanum Gothic', 'DejaVu Sans', sans-serif"
# XML 1.0 allows tab, LF, CR and everything from U+0020 except surrogates and
# U+FFFE/U+FFFF; anything else makes the whole SVG unparsable.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# -log10(p) for p = 5e-324 (smallest double) is about 323; p = 0 is reported by
# some tests when the statistic overflows, so it gets the same ceiling.
_NEG_LOG10_CAP = 324.0


def svg_text_escape(value: Any, *, max_chars: int | None = None) -> str:
    """Return ``value`` as text safe inside an SVG element or attribute.

    Escapes ``& < > " '`` and removes characters XML 1.0 forbids. With
    ``max_chars``, long labels are cut and end with an ellipsis (the full label
    goes into the element's ``<title>`` by the callers).
    """
    text = _XML_FORBIDDEN.sub("?", str(value))
    if max_chars is not None and len(text) > max_chars:
        text = text[: max(1, max_chars - 1)] + "\u2026"
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def _number(value: Any) -> float:
    """A finite float, or 0.0 for None / NaN / infinities / junk."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _format_number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.3g}"


def _text_width(text: str, size: float) -> float:
    """Rough advance width: Hangul/CJK glyphs are about 1 em wide, Latin about 0.55 em."""
    return sum(size if ord(ch) >= 0x1100 else size * 0.55 for ch in text)


def _chart_id(kind: str, title: str, payload: Any) -> str:
    """Stable id prefix so several charts on one HTML page do not clash."""
    digest = hashlib.sha256(f"{kind}\x00{title}\x00{payload!r}".encode("utf-8", "replace")).hexdigest()
    return f"{kind}-{digest[:10]}"


def _svg_open(*, chart_id: str, width: float, height: float, title: str, desc: str, font_family: str | None = None) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        f'id="{chart_id}" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
        f'font-family="{svg_text_escape(font_family or _FONT_FAMILY)}" font-size="12" fill="{TEXT_COLOR}">',
        f'<title id="{chart_id}-title">{svg_text_escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{svg_text_escape(desc)}</desc>',
    ]


def _desc_join(parts: Sequence[str], *, limit: int = 60) -> str:
    """Join the per-item sentences, cut after ``limit`` items (a 10,000-row
    <desc> would help nobody and bloat the page)."""
    if len(parts) <= limit:
        return "; ".join(parts) + "."
    return "; ".join(parts[:limit]) + f"; and {len(parts) - limit} more."


def bar_chart_svg(
    *,
    title: str,
    items: Sequence[tuple[Any, Any]],
    desc: str | None = None,
    width: int = 640,
    bar_height: int = 20,
    color: str = BAR_COLOR,
    unit: str = "",
    label_chars: int = 32,
    font_family: str | None = None,
) -> str:
    """Horizontal bar chart: one bar per ``(label, value)``.

    Horizontal so long labels (project names, licence expressions) stay
    readable. Negative, missing and non-finite values are drawn as 0 and said
    so in the description. ``desc`` overrides the generated description.
    """
    rows = [(str(label), _number(value)) for label, value in items]
    label_width = min(width * 0.4, 7 * label_chars + 8)
    value_width = 70
    plot_x = label_width + 8
    plot_width = max(40.0, width - plot_x - value_width)
    top = 30
    gap = max(4, bar_height // 4)
    height = top + max(1, len(rows)) * (bar_height + gap) + 10
    maximum = max((v for _, v in rows if v > 0), default=0.0)
    if desc is None:
        desc = (
            _desc_join([f"{label}: {_format_number(value)}{unit}" for label, value in rows])
            if rows
            else "No data."
        )
    chart_id = _chart_id("bar", title, rows)
    out = _svg_open(chart_id=chart_id, width=width, height=height, title=title, desc=desc, font_family=font_family)
    out.append(
        f'<text x="0" y="16" font-size="14" font-weight="bold">{svg_text_escape(title, max_chars=90)}</text>'
    )
    if not rows:
        out.append(f'<text x="{plot_x:.1f}" y="{top + 14}" fill="{MUTED_TEXT_COLOR}">No data</text>')
    for index, (label, value) in enumerate(rows):
        y = top + index * (bar_height + gap)
        length = plot_width * (value / maximum) if maximum > 0 and value > 0 else 0.0
        text_y = y + bar_height * 0.7
        out.append("<g>")
        out.append(f"<title>{svg_text_escape(label)}: {svg_text_escape(_format_number(value))}{svg_text_escape(unit)}</title>")
        out.append(
            f'<text x="{label_width:.1f}" y="{text_y:.1f}" text-anchor="end">'
            f"{svg_text_escape(label, max_chars=label_chars)}</text>"
        )
        out.append(
            f'<rect x="{plot_x:.1f}" y="{y:.1f}" width="{length:.1f}" height="{bar_height}" fill="{svg_text_escape(color)}"/>'
        )
        out.append(
            f'<text x="{plot_x + length + 4:.1f}" y="{text_y:.1f}">'
            f"{svg_text_escape(_format_number(value))}{svg_text_escape(unit)}</text>"
        )
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def _hatch(*, x: float, y: float, width: float, height: float, pattern: str) -> str:
    """Lines inside a rectangle that tell one series from another without colour."""
    lines = []
    step = 4.0
    if pattern in ("vertical", "grid"):
        position = x + step / 2
        while position < x + width:
            lines.append(f'<line x1="{position:.1f}" y1="{y:.1f}" x2="{position:.1f}" y2="{y + height:.1f}"/>')
            position += step
    if pattern in ("horizontal", "grid"):
        position = y + step / 2
        while position < y + height:
            lines.append(f'<line x1="{x:.1f}" y1="{position:.1f}" x2="{x + width:.1f}" y2="{position:.1f}"/>')
            position += step
    if not lines:
        return ""
    return f'<g stroke="#ffffff" stroke-width="1" stroke-opacity="0.55" aria-hidden="true">{"".join(lines)}</g>'


def _relative_luminance(color: str) -> float:
    """WCAG relative luminance of a #rrggbb colour."""
    channels = [int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _text_color_on(fill: str) -> str:
    """White or KRDS gray-90, whichever contrasts more with ``fill`` (WCAG formula)."""
    try:
        luminance = _relative_luminance(fill)
    except ValueError:
        return TEXT_COLOR
    on_white = 1.05 / (luminance + 0.05)
    on_dark = (luminance + 0.05) / (_relative_luminance(TEXT_COLOR) + 0.05)
    return "#ffffff" if on_white >= on_dark else TEXT_COLOR


def stacked_bar_svg(
    *,
    title: str,
    categories: Sequence[Any],
    series: Sequence[tuple[Any, Sequence[Any]]],
    desc: str | None = None,
    colors: dict[str, str] | None = None,
    width: int = 640,
    bar_height: int = 20,
    label_chars: int = 28,
    font_family: str | None = None,
) -> str:
    """Horizontal stacked bars: one bar per category, one segment per series.

    Example: findings by severity per project::

        stacked_bar_svg(title="Open findings", categories=["Project A", "Project B"],
                        series=[("critical", [1, 0]), ("high", [3, 2]), ("low", [7, 1])])

    Series colours come from ``colors`` by name, then ``SEVERITY_COLORS``, then
    a colour-blind-safe fallback cycle. A series shorter than ``categories``
    counts as 0 for the missing categories.
    """
    cats = [str(c) for c in categories]
    named = [(str(name), [_number(v) for v in values]) for name, values in series]
    palette = {**SEVERITY_COLORS, **(colors or {})}
    series_colors = [
        palette.get(name, palette.get(name.lower(), _FALLBACK_COLORS[i % len(_FALLBACK_COLORS)]))
        for i, (name, _) in enumerate(named)
    ]

    def value_at(values: list[float], index: int) -> float:
        return max(0.0, values[index]) if index < len(values) else 0.0

    totals = [sum(value_at(values, i) for _, values in named) for i in range(len(cats))]
    maximum = max(totals, default=0.0)
    label_width = min(width * 0.35, 7 * label_chars + 8)
    plot_x = label_width + 8
    plot_width = max(40.0, width - plot_x - 60)
    legend_positions: list[tuple[float, float]] = []
    lx, ly = plot_x, 24.0
    for name, _ in named:
        entry = 14 + _text_width(name[:30], 11) + 16
        if lx + entry > width and lx > plot_x:
            lx, ly = plot_x, ly + 18
        legend_positions.append((lx, ly))
        lx += entry
    legend_rows = int((ly - 24) // 18) + 1 if named else 0
    top = 30 + legend_rows * 18
    gap = max(4, bar_height // 4)
    height = top + max(1, len(cats)) * (bar_height + gap) + 10
    if desc is None:
        sentences = []
        for i, cat in enumerate(cats):
            parts = ", ".join(f"{name} {_format_number(value_at(values, i))}" for name, values in named)
            sentences.append(f"{cat}: {parts} (total {_format_number(totals[i])})")
        desc = _desc_join(sentences) if sentences else "No data."
    chart_id = _chart_id("stack", title, (cats, named))
    out = _svg_open(chart_id=chart_id, width=width, height=height, title=title, desc=desc, font_family=font_family)
    out.append(
        f'<text x="0" y="16" font-size="14" font-weight="bold">{svg_text_escape(title, max_chars=90)}</text>'
    )
    # Legend: entries laid out left to right, wrapped at the chart width.
    for i, (lx, ly) in enumerate(legend_positions):
        name = named[i][0]
        out.append(f'<rect x="{lx:.1f}" y="{ly:.1f}" width="10" height="10" fill="{svg_text_escape(series_colors[i])}"/>')
        out.append(_hatch(x=lx, y=ly, width=10, height=10, pattern=SERIES_PATTERNS[i % len(SERIES_PATTERNS)]))
        out.append(f'<text x="{lx + 14:.1f}" y="{ly + 9:.1f}" font-size="11">{svg_text_escape(name, max_chars=30)}</text>')
    if not cats:
        out.append(f'<text x="{plot_x:.1f}" y="{top + 14}" fill="{MUTED_TEXT_COLOR}">No data</text>')
    for i, cat in enumerate(cats):
        y = top + i * (bar_height + gap)
        text_y = y + bar_height * 0.7
        out.append("<g>")
        out.append(f"<title>{svg_text_escape(cat)}</title>")
        out.append(
            f'<text x="{label_width:.1f}" y="{text_y:.1f}" text-anchor="end">{svg_text_escape(cat, max_chars=label_chars)}</text>'
        )
        x = plot_x
        for s, (name, values) in enumerate(named):
            value = value_at(values, i)
            if value <= 0 or maximum <= 0:
                continue
            length = plot_width * value / maximum
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{length:.1f}" height="{bar_height}" '
                f'fill="{svg_text_escape(series_colors[s])}" stroke="#ffffff" stroke-width="0.5">'
                f"<title>{svg_text_escape(cat)} \u2013 {svg_text_escape(name)}: {svg_text_escape(_format_number(value))}</title></rect>"
            )
            out.append(_hatch(x=x, y=y, width=length, height=bar_height, pattern=SERIES_PATTERNS[s % len(SERIES_PATTERNS)]))
            number = _format_number(value)
            if length >= _text_width(number, 11) + 6:  # the count inside the segment, when it fits
                out.append(
                    f'<text x="{x + length / 2:.1f}" y="{text_y:.1f}" font-size="11" text-anchor="middle" '
                    f'font-weight="bold" fill="{_text_color_on(series_colors[s])}" stroke="none">{svg_text_escape(number)}</text>'
                )
            x += length
        out.append(f'<text x="{x + 4:.1f}" y="{text_y:.1f}">{svg_text_escape(_format_number(totals[i]))}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def _natural_key(value: Any) -> tuple:
    """Sort "layers.10" after "layers.9" and ints numerically."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    parts = re.split(r"(\d+)", str(value))
    return (1, 0.0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts))


def _neg_log10(p_value: Any) -> float | None:
    """-log10(p), capped at 324; None when p is missing or not a probability."""
    if p_value is None:
        return None
    try:
        p = float(p_value)
    except (TypeError, ValueError):
        return None
    if math.isnan(p) or p < 0 or p > 1:
        return None
    if p == 0:
        return _NEG_LOG10_CAP
    return min(_NEG_LOG10_CAP, -math.log10(p))


def _shade(strength: float) -> str:
    """White -> deep red as evidence grows; ``strength`` in [0, 1]."""
    strength = max(0.0, min(1.0, strength))
    low, high = (0xF7, 0xF7, 0xF7), (0x7A, 0x00, 0x19)
    rgb = [round(a + (b - a) * strength) for a, b in zip(low, high)]
    return "#" + "".join(f"{c:02x}" for c in rgb)


def layer_map_svg(
    *,
    title: str,
    layers: Sequence[dict[str, Any]],
    reference_layers: Iterable[Any] | None = None,
    candidate_name: str = "Candidate",
    reference_name: str = "Reference",
    alpha: float = 0.01,
    desc: str | None = None,
    width: int = 640,
    max_height: int = 900,
    font_family: str | None = None,
) -> str:
    """Per-layer lineage map: which candidate layer matches which reference layer.

    ``layers`` holds one dict per candidate layer with ``candidate_layer``,
    ``reference_layer`` (None when no reference layer matched), ``p_value``
    and ``statistic``. Candidate layers are drawn on the left in the given
    order, reference layers on the right (``reference_layers`` if given, else
    the matched ones in natural order), and a line joins each match. Line and
    row shading grow with -log10(p): white at p = 1, deepest red at
    p <= 1e-12 (below that every test in practice says "same weights", so
    more contrast would only hide the weaker matches). Matches with
    p >= ``alpha`` are drawn dashed: they are not evidence of derivation.
    """
    # Evidence JSON may hold anything: only dict rows are layers.
    rows = [row for row in layers if isinstance(row, dict)]
    refs = list(reference_layers) if reference_layers is not None else []
    known = set(map(str, refs))
    extra = sorted(
        {row.get("reference_layer") for row in rows if row.get("reference_layer") is not None and str(row.get("reference_layer")) not in known},
        key=_natural_key,
    )
    refs = refs + extra
    ref_index = {str(ref): i for i, ref in enumerate(refs)}
    count = max(len(rows), len(refs), 1)
    # 18 px rows up to 45 layers; denser beyond so an 80-layer model still
    # fits one A4 page (900 px at 96 dpi minus margins), never below 4 px.
    top = 64
    row_h = max(4.0, min(18.0, (max_height - top - 40) / count))
    font = max(6.0, min(11.0, row_h * 0.75))
    label_every = max(1, math.ceil(8.0 / row_h))  # keep labels at least 8 px apart
    height = top + count * row_h + 40
    left_x = 150.0
    right_x = width - 150.0
    significance_full = 12.0
    desc_parts = []
    for row in rows:
        p = row.get("p_value")
        ref = row.get("reference_layer")
        if ref is None:
            desc_parts.append(f"{candidate_name} layer {row.get('candidate_layer')}: no matching {reference_name} layer")
        else:
            p_text = "unknown" if _neg_log10(p) is None else f"{_number(p):.2g}"
            desc_parts.append(
                f"{candidate_name} layer {row.get('candidate_layer')} matches {reference_name} layer {ref} (p = {p_text})"
            )
    if desc is None:
        significant = sum(
            1 for row in rows if row.get("reference_layer") is not None and (_neg_log10(row.get("p_value")) or 0) > -math.log10(alpha)
        )
        head = f"{significant} of {len(rows)} {candidate_name} layers match a {reference_name} layer at p < {alpha:g}. "
        desc = head + (_desc_join(desc_parts, limit=40) if desc_parts else "No layers.")
    chart_id = _chart_id("layers", title, rows)
    out = _svg_open(chart_id=chart_id, width=width, height=height, title=title, desc=desc, font_family=font_family)
    out.append(f'<text x="0" y="16" font-size="14" font-weight="bold">{svg_text_escape(title, max_chars=90)}</text>')
    out.append(
        f'<text x="{left_x:.1f}" y="{top - 12}" text-anchor="end" font-weight="bold">{svg_text_escape(candidate_name, max_chars=22)}</text>'
    )
    out.append(
        f'<text x="{right_x:.1f}" y="{top - 12}" font-weight="bold">{svg_text_escape(reference_name, max_chars=22)}</text>'
    )
    # Colour scale legend: five steps of -log10 p.
    for step in range(5):
        strength = step / 4
        out.append(
            f'<rect x="{width / 2 - 100 + step * 40:.1f}" y="24" width="40" height="10" fill="{_shade(strength)}" stroke="#999" stroke-width="0.3"/>'
        )
    out.append(f'<text x="{width / 2 - 104:.1f}" y="33" text-anchor="end" font-size="10">p = 1</text>')
    out.append(f'<text x="{width / 2 + 104:.1f}" y="33" font-size="10">p \u2264 1e-12</text>')

    def y_of(index: int) -> float:
        return top + index * row_h + row_h / 2

    for i, ref in enumerate(refs):
        y = y_of(i)
        out.append(f'<circle cx="{right_x:.1f}" cy="{y:.1f}" r="{min(3.0, row_h / 3):.1f}" fill="{MUTED_TEXT_COLOR}"/>')
        if i % label_every == 0:
            out.append(
                f'<text x="{right_x + 6:.1f}" y="{y + font / 3:.1f}" font-size="{font:.1f}">{svg_text_escape(ref, max_chars=24)}</text>'
            )
    for i, row in enumerate(rows):
        y = y_of(i)
        cand = row.get("candidate_layer")
        ref = row.get("reference_layer")
        score = _neg_log10(row.get("p_value"))
        strength = 0.0 if score is None else min(1.0, score / significance_full)
        out.append("<g>")
        tip = desc_parts[i]
        if row.get("statistic") is not None:
            tip += f", statistic {_number(row.get('statistic')):.4g}"
        out.append(f"<title>{svg_text_escape(tip)}</title>")
        out.append(
            f'<rect x="{left_x + 4:.1f}" y="{top + i * row_h:.1f}" width="14" height="{max(1.0, row_h - 1):.1f}" '
            f'fill="{_shade(strength)}" stroke="#999" stroke-width="0.3"/>'
        )
        if i % label_every == 0:
            out.append(
                f'<text x="{left_x:.1f}" y="{y + font / 3:.1f}" text-anchor="end" font-size="{font:.1f}">{svg_text_escape(cand, max_chars=24)}</text>'
            )
        if ref is not None and str(ref) in ref_index:
            ry = y_of(ref_index[str(ref)])
            dashed = score is None or score <= -math.log10(alpha)
            out.append(
                f'<line x1="{left_x + 18:.1f}" y1="{y:.1f}" x2="{right_x - 4:.1f}" y2="{ry:.1f}" '
                f'stroke="{_shade(max(0.25, strength))}" stroke-width="{1 + 1.5 * strength:.2f}"'
                + (' stroke-dasharray="4 3"' if dashed else "")
                + "/>"
            )
        else:
            out.append(
                f'<text x="{left_x + 24:.1f}" y="{y + font / 3:.1f}" font-size="{font:.1f}" fill="{_SUBTLE_COLOR}">\u2013</text>'
            )
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


# Training-evidence chain: what each cell's verdict means for a run from scratch.
_CHAIN_GOOD = KRDS_TOKENS["krds-color-light-success-60"]
_CHAIN_BAD = KRDS_TOKENS["krds-color-light-danger-70"]
_CHAIN_UNDECIDED = KRDS_TOKENS["krds-color-light-gray-20"]


def training_chain_svg(*, title: str, checkpoints: Sequence[dict[str, Any]], step_label: str = "Step",
                       link_label: str = "Derives from the previous step", font_family: str | None = None) -> str:
    """The chain of a training-evidence bundle: one column per checkpoint (steps along the x axis),
    one row for the link to the previous checkpoint and one per registered model tested. A link
    that derives is what a real run shows (green); a registered model the checkpoint derives from
    is what it must not show (red); undecided cells are grey. Each cell gives the p-value, so the
    figure never stands for a bare colour."""
    columns = [c for c in checkpoints if isinstance(c, dict)][:40]
    references: list[str] = []
    for c in columns:
        for t in c.get("tests") or []:
            if isinstance(t, dict) and t.get("kind") == "reference" and str(t.get("against")) not in references:
                references.append(str(t.get("against")))
    rows = [link_label] + references[:12]
    label_width = min(260.0, max(_text_width(r, 12) for r in rows) + 16)
    cell_w, cell_h, top = 64.0, 26.0, 30.0
    width = label_width + cell_w * max(1, len(columns)) + 10
    height = top + cell_h * len(rows) + 10
    out = _svg_open(chart_id=_chart_id("chain", title, [c.get("step") for c in columns]), width=width,
                    height=height, title=title, desc=_desc_join(_chain_desc(columns, link_label, step_label)),
                    font_family=font_family)
    for j, c in enumerate(columns):
        x = label_width + cell_w * j + cell_w / 2
        heading = svg_text_escape(f"{step_label} {c.get('step')}", max_chars=14)
        out.append(f'<text x="{x:.1f}" y="{top - 10:.1f}" text-anchor="middle">{heading}</text>')
    for i, row in enumerate(rows):
        y = top + cell_h * i
        out.append(f'<text x="4" y="{y + cell_h / 2 + 4:.1f}">{svg_text_escape(row, max_chars=40)}</text>')
        for j, c in enumerate(columns):
            test = _chain_test(c, "previous" if i == 0 else "reference", None if i == 0 else row)
            if test is None:
                continue
            verdict = test.get("verdict")
            good = verdict == ("derived" if i == 0 else "independent")
            bad = verdict == ("independent" if i == 0 else "derived")
            fill = _CHAIN_GOOD if good else _CHAIN_BAD if bad else _CHAIN_UNDECIDED
            x = label_width + cell_w * j
            out.append(f'<rect x="{x + 2:.1f}" y="{y + 2:.1f}" width="{cell_w - 4:.1f}" height="{cell_h - 4:.1f}" '
                       f'fill="{fill}" rx="3"/>')
            p = test.get("p_value")
            text = f"p {float(p):.0e}" if isinstance(p, (int, float)) else "—"
            out.append(f'<text x="{x + cell_w / 2:.1f}" y="{y + cell_h / 2 + 4:.1f}" text-anchor="middle" '
                       f'fill="{_text_color_on(fill)}" font-size="10">{svg_text_escape(text)}</text>')
    out.append("</svg>")
    return "".join(out)


def _chain_test(checkpoint: dict[str, Any], kind: str, against: str | None) -> dict[str, Any] | None:
    for test in checkpoint.get("tests") or []:
        if isinstance(test, dict) and test.get("kind") == kind and (against is None or str(test.get("against")) == against):
            return test
    return None


def _chain_desc(columns: Sequence[dict[str, Any]], link_label: str, step_label: str) -> list[str]:
    parts = []
    for c in columns:
        for test in c.get("tests") or []:
            if isinstance(test, dict):
                what = link_label if test.get("kind") == "previous" else str(test.get("against"))
                parts.append(f"{step_label} {c.get('step')}, {what}: {test.get('verdict')} (p = {test.get('p_value')})")
    return parts
