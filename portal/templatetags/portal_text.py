"""Vendor text shown as it reads: control and invisible characters made visible.

A file named ``invoice\u202egnp.exe`` (a right-to-left override) reads "invoiceexe.png" on screen;
a zero-width space or a Hangul filler makes two names look the same. Pages and dossiers show such
characters as a visible code, e.g. ``invoice⟦U+202E⟧gnp.exe``; the stored name keeps the vendor's
exact characters (the API and the metadata return them unchanged).

Installed as a template builtin (settings.TEMPLATES), so every template can write ``{{ name|shown }}``.
"""

from __future__ import annotations

import unicodedata

from django import template

register = template.Library()

# Characters that draw nothing (or reorder what follows) but are not in the Cf/Cc/Z* categories.
_INVISIBLE_LETTERS = {0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800, 0x180E, 0x17B4, 0x17B5}
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"}


def shown_text(value) -> str:
    text = "" if value is None else str(value)
    if text.isascii() and text.isprintable():
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if unicodedata.category(ch) in _HIDDEN_CATEGORIES or code in _INVISIBLE_LETTERS or (
                unicodedata.category(ch) == "Zs" and ch != " "):
            out.append(f"⟦U+{code:04X}⟧")
        else:
            out.append(ch)
    return "".join(out)


@register.filter(name="shown")
def shown(value) -> str:
    """The text with control, format and invisible characters as ⟦U+XXXX⟧ (auto-escaped as usual)."""
    return shown_text(value)
