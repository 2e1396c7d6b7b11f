"""JSON / YAML / TOML parsing with limits; text decoding that reports instead of crashing."""

from __future__ import annotations

import pytest

from compliance.engine.intake_common import IntakeLimits
from compliance.engine.structured import (
    StructuredError,
    json_depth_measure,
    json_parse,
    structured_parse,
    text_inspect,
    toml_parse,
    yaml_parse,
)
from tests.shared import shared_data

# Named, not globbed: a missing shared folder must fail these tests, not leave an empty (skipped) set.
REAL_MODELS = ("DeepSeek-V3", "Llama-3.1-8B", "Mixtral-8x7B-v0.1", "Qwen3-30B-A3B", "all-MiniLM-L6-v2")


@pytest.mark.parametrize("model", REAL_MODELS)
def test_real_model_configs_parse_cleanly(model: str) -> None:
    config = shared_data("model-configs", model, "config.json")
    parsed = json_parse(data=config.read_bytes(), name="config.json")
    assert parsed.findings == []
    assert isinstance(parsed.value, dict)
    assert parsed.depth < 10  # the default limit of 64 is far above real files


def test_real_tokenizer_json_parses() -> None:
    tokenizer = shared_data("model-configs", "Mixtral-8x7B-v0.1", "tokenizer.json")
    parsed = json_parse(data=tokenizer.read_bytes(), name="tokenizer.json")
    assert len(parsed.value["model"]["vocab"]) == 32000


def test_deep_json_is_refused_without_recursion() -> None:
    with pytest.raises(StructuredError) as info:
        json_parse(data=b"[" * 200_000 + b"]" * 200_000)
    assert info.value.code == "structured_too_deep"
    assert info.value.evidence["depth"] == 200_000


def test_brackets_inside_strings_do_not_count() -> None:
    assert json_depth_measure(data=b'{"a": "[[[[[[\\"[[[[", "b": [1]}') == 2


def test_duplicate_keys_are_a_finding() -> None:
    parsed = json_parse(data=b'{"vocab_size": 32000, "vocab_size": 151936}')
    assert [f.code for f in parsed.findings] == ["json_duplicate_keys"]
    assert parsed.findings[0].evidence["keys"] == ["vocab_size"]


@pytest.mark.parametrize(
    "data, code",
    [
        (b'{"a": NaN}', "json_invalid"),
        (b'{"a": 1', "json_invalid"),
        (b'{"a": "\xff"}', "structured_invalid_utf8"),
    ],
)
def test_invalid_json(data: bytes, code: str) -> None:
    with pytest.raises(StructuredError) as info:
        json_parse(data=data)
    assert info.value.code == code


def test_size_limit_is_checked_before_parsing() -> None:
    with pytest.raises(StructuredError) as info:
        json_parse(data=b"[" + b"1," * 1000 + b"1]", limits=IntakeLimits(max_json_bytes=100))
    assert info.value.code == "structured_too_large"


def test_yaml_billion_laughs_is_refused() -> None:
    lines = [b"a: &a [x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]".encode())
    # Only 72 aliases (under the alias cap) but 9**8 nodes once expanded.
    with pytest.raises(StructuredError) as info:
        yaml_parse(data=b"\n".join(lines))
    assert info.value.code == "yaml_alias_expansion"
    many = b"a: &a 1\nb: [" + b", ".join([b"*a"] * 500) + b"]\n"
    with pytest.raises(StructuredError) as info:
        yaml_parse(data=many)
    assert info.value.code == "yaml_too_many_aliases"
    assert yaml_parse(data=b"base: &base {lr: 0.1}\nrun: {<<: *base, steps: 10}\n").value["run"]["lr"] == 0.1


def test_yaml_is_loaded_safely() -> None:
    with pytest.raises(StructuredError) as info:
        yaml_parse(data=b"!!python/object/apply:os.system ['echo pwned']")
    assert info.value.code == "yaml_invalid"


def test_yaml_deep_nesting_and_multiple_documents() -> None:
    with pytest.raises(StructuredError, match="nests"):
        yaml_parse(data=b"[" * 5000 + b"]" * 5000)
    with pytest.raises(StructuredError, match="documents"):
        yaml_parse(data=b"a: 1\n---\nb: 2\n")


def test_toml_parses_and_deep_toml_is_refused() -> None:
    assert toml_parse(data=b'[model]\nname = "x"\nlayers = 32\n').value == {"model": {"name": "x", "layers": 32}}
    with pytest.raises(StructuredError) as info:
        toml_parse(data=b"a = " + b"[" * 3000 + b"]" * 3000)
    assert info.value.code == "structured_too_deep"
    with pytest.raises(StructuredError, match="not valid TOML"):
        structured_parse(data=b"a = = 1", kind="toml")


def test_text_with_invalid_utf8_and_nuls_is_reported() -> None:
    report = text_inspect(data=b"licence: MIT \xff\xfe caf\xc3\xa9 \x00 \xef\xbf\xbd")
    assert report.valid_utf8 is False
    assert report.invalid_sequences == 2  # the genuine U+FFFD at the end is not counted
    assert report.first_invalid_offset == 13
    assert report.nul_bytes == 1
    assert sorted(f.code for f in report.findings) == ["text_invalid_utf8", "text_nul_bytes"]


def test_clean_text() -> None:
    report = text_inspect(data="모델 카드\n".encode())
    assert report.valid_utf8 and report.findings == []
