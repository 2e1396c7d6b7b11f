"""File names and other vendor text are shown as they read, with hidden characters made visible."""

from __future__ import annotations

from django.template import engines
from hypothesis import given
from hypothesis import strategies as st

from portal.templatetags.portal_text import shown_text


def test_right_to_left_override_is_shown_not_obeyed():
    assert shown_text("invoice\u202egnp.exe") == "invoice⟦U+202E⟧gnp.exe"


def test_invisible_characters_are_made_visible():
    assert shown_text("model\u200b.safetensors") == "model⟦U+200B⟧.safetensors"
    assert shown_text("a\u3164b") == "a⟦U+3164⟧b"  # Hangul filler, a letter that draws nothing
    assert shown_text("tab\there") == "tab⟦U+0009⟧here"
    assert shown_text("nbsp\u00a0x") == "nbsp⟦U+00A0⟧x"


def test_ordinary_names_in_any_script_are_unchanged():
    for name in ("config.json", "모델 가중치.safetensors", "модель-v2.gguf", "权重 (最终).bin", "naïve café.txt"):
        assert shown_text(name) == name


def test_the_filter_is_available_in_every_template_and_still_escapes():
    template = engines["django"].from_string("{{ name|shown }}")
    assert template.render({"name": "<b>x\u202e</b>"}) == "&lt;b&gt;x⟦U+202E⟧&lt;/b&gt;"


@given(st.text())
def test_nothing_hidden_survives(text):
    import unicodedata

    shown = shown_text(text)
    for ch in shown:
        assert unicodedata.category(ch) not in {"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"}
