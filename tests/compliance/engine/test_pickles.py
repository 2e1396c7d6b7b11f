"""Pickle scanning: never unpickles, flags every pickle, rejects code and malformed streams."""

from __future__ import annotations

import io
import pickle
import pickletools
from collections import OrderedDict

import pytest

from compliance.engine.intake_common import IntakeLimits
from compliance.engine.pickles import PickleScanError, pickle_looks_like, pickle_scan
from tests.compliance.engine import hostile


def scan(data: bytes, **kwargs):
    return pickle_scan(stream=io.BytesIO(data), name="model.bin", **kwargs)


def codes(report) -> list[str]:
    return [f.code for f in report.findings]


@pytest.mark.parametrize("payload", [hostile.PICKLE_OS_SYSTEM_P0, hostile.PICKLE_OS_SYSTEM_P4_MEMO], ids=["protocol0", "protocol4-memo"])
def test_command_running_pickle_is_critical_and_names_the_call(payload: bytes) -> None:
    report = scan(payload)
    critical = [f for f in report.findings if f.severity == "critical"]
    assert [f.code for f in critical] == ["pickle_imports_callable"]
    assert critical[0].evidence["name"] == "system"
    assert critical[0].evidence["called"] is True
    assert "run code or commands" in critical[0].message


def test_memo_trick_does_not_hide_the_import() -> None:
    # A look-behind scanner would see the decoy 'dummy' string; the symbolic
    # machine follows the memo exactly as pickle does.
    report = scan(hostile.PICKLE_OS_SYSTEM_P4_MEMO)
    assert [i.qualified_name for i in report.imports] == ["posix.system"]


def test_torch_state_dict_is_medium_only_with_allowlisted_imports() -> None:
    data = hostile.pickle_torch_state_dict()
    pickletools.dis(io.BytesIO(data), out=io.StringIO())  # our hand-built bytes are a valid pickle
    report = scan(data)
    assert codes(report) == ["pickle_format"]
    assert report.findings[0].severity == "medium"
    assert {i.qualified_name for i in report.imports} == {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage"}
    assert report.persistent_ids == 1


def test_legacy_torch_layout_stops_at_raw_storage() -> None:
    report = scan(hostile.pickle_torch_legacy())
    assert report.torch_legacy is True
    assert report.pickle_count == 5
    assert codes(report) == ["pickle_format"]  # raw tensor bytes after the 5th pickle are not "trailing data"


@pytest.mark.parametrize("protocol", range(0, 6))
def test_plain_state_dict_every_protocol(protocol: int) -> None:
    data = pickle.dumps(OrderedDict(layer=[1.0, 2.0], name="x"), protocol=protocol)
    report = scan(data)
    assert codes(report) == ["pickle_format"]
    assert report.protocol == (protocol if protocol >= 2 else 0)


def test_non_allowlisted_global_is_critical_even_if_harmless() -> None:
    data = pickle.dumps({1, 2, 3}.__class__, protocol=2)  # builtins.set
    report = scan(data)
    assert "pickle_imports_callable" in codes(report)


@pytest.mark.parametrize(
    "data, reason",
    [
        (hostile.PICKLE_OS_SYSTEM_P0[:-1], "truncated"),
        (b"\x80\x04\x95", "truncated"),
        (b"\x80\x09N.", "protocol"),
        (b"\xff", "unknown opcode"),
        (b"R.", "empty"),
        (b"\x80\x02h\x05.", "never written"),
        (b"\x80\x04\x8e" + (2**63).to_bytes(8, "little"), "claims"),
        (b"\x80\x02e.", "without a MARK"),
    ],
)
def test_malformed_streams_raise_scan_error(data: bytes, reason: str) -> None:
    with pytest.raises(PickleScanError, match=reason):
        scan(data)


def test_huge_argument_is_skipped_not_held() -> None:
    big = b"\x80\x04\x8e" + (5 * 1024 * 1024).to_bytes(8, "little") + bytes(5 * 1024 * 1024) + b"."
    report = scan(big, limits=IntakeLimits(max_pickle_arg_bytes=1024))
    assert codes(report) == ["pickle_format"]


def test_trailing_bytes_after_stop_are_reported() -> None:
    report = scan(pickle.dumps([1], protocol=2) + b"MZ\x90\x00 payload")
    assert "pickle_trailing_data" in codes(report)


def test_opcode_cap_stops_endless_streams() -> None:
    data = b"\x80\x02" + b"N0" * 1000 + b"N."
    with pytest.raises(PickleScanError, match="opcodes"):
        scan(data, limits=IntakeLimits(max_pickle_opcodes=100))


def test_sniffing() -> None:
    assert pickle_looks_like(head=hostile.PICKLE_OS_SYSTEM_P0)
    assert pickle_looks_like(head=pickle.dumps([1], protocol=4))
    assert not pickle_looks_like(head=b"Apache License\nVersion 2.0\n")
    assert not pickle_looks_like(head=b"cat /etc/passwd\n")


def test_npy_object_arrays_are_found_and_numeric_ones_are_not() -> None:
    import numpy as np

    from compliance.engine.pickles import npy_object_data_offset

    buffer = io.BytesIO()
    np.save(buffer, np.array([1, "a", None], dtype=object), allow_pickle=True)
    data = buffer.getvalue()
    offset = npy_object_data_offset(head=data)
    assert offset is not None
    report = pickle_scan(stream=io.BytesIO(data[offset:]))
    assert any(i.name == "_reconstruct" for i in report.imports)
    numeric = io.BytesIO()
    np.save(numeric, np.zeros(3, np.float32))
    assert npy_object_data_offset(head=numeric.getvalue()) is None
    with pytest.raises(PickleScanError, match="literal"):
        npy_object_data_offset(head=b"\x93NUMPY\x01\x00\x10\x00__import__('os')")
