"""Static inspection of pickle streams (PyTorch .bin/.pt/.pth/.ckpt, data.pkl in zips).

Nothing here ever unpickles. We walk the opcode stream on a small symbolic
stack machine that mirrors CPython's `pickle._Unpickler` (same stack, mark
stack and memo rules), so we know which globals a stream imports and which of
them it calls, without importing or calling anything.

Why our own walker rather than `pickletools.genops`, picklescan or fickling:
- `genops` reads every argument whole: a BINBYTES8 that claims 2**62 bytes
  makes it allocate (or die) before we can refuse. We skip long arguments in
  1 MiB chunks instead and hold only short strings (module/attribute names).
- picklescan is a blocklist and resolves STACK_GLOBAL by looking back at the
  previous opcodes, which memo tricks can desynchronise (see the research
  notes: HF proof-of-concept files). We need an allowlist and exact memo
  semantics.
- fickling is maintained and exact but decompiles the whole stream to an AST
  in memory; it is not a dependency of the portal.
Policy (research notes, Part B.3): every pickle is at least a medium finding;
anything imported beyond tensor rebuilding is critical; any scanner error or
malformed stream raises `PickleScanError`, which callers turn into a
rejection, never "clean".
"""

from __future__ import annotations

import ast
import io
import pickletools
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from compliance.engine.intake_common import Finding, IntakeLimits, MiB

# What a PyTorch state dict legitimately imports (torch.save of tensors and
# Parameters in an OrderedDict). Everything else is critical: the portal never
# runs a model, so it has no reason to accept any other callable.
PICKLE_ALLOWED_GLOBALS: frozenset[str] = frozenset(
    {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch.Size",
        "torch.device",
        "torch.storage.UntypedStorage",
        "torch.UntypedStorage",
    }
    | {
        f"torch.{t}Storage"
        for t in (
            "Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool",
            "ComplexFloat", "ComplexDouble", "QInt8", "QUInt8", "QInt32", "QUInt4x2", "QUInt2x4",
        )
    }
    | {
        f"torch.{d}"
        for d in (
            "float16", "bfloat16", "float32", "float64", "complex64", "complex128",
            "int8", "int16", "int32", "int64", "uint8", "bool",
            "float8_e4m3fn", "float8_e5m2",
        )
    }
)

# Imports that run code outright; they get a sharper message (still critical).
_PICKLE_CODE_EXECUTION_MODULES = frozenset(
    {"os", "posix", "nt", "subprocess", "builtins", "__builtin__", "runpy", "sys", "shutil",
     "socket", "importlib", "pty", "commands", "webbrowser", "marshal", "types", "code", "ctypes"}
)

# The first pickle of a legacy (pre-1.6, non-zip) torch.save file is this
# number; four more pickles follow, then raw storage bytes.
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_LEGACY_PICKLE_COUNT = 5

_PROTO_OPCODE = 0x80
_HIGHEST_PROTOCOL = 5
# A text line (protocol 0 argument) longer than this is not a real pickle:
# GLOBAL module and attribute names are a few dozen bytes.
_MAX_LINE_BYTES = 64 * 1024


class PickleScanError(ValueError):
    """The stream is not a well-formed pickle, or the scan could not finish.

    Callers must treat this as a rejection: an unreadable pickle is never clean.
    """


@dataclass(frozen=True)
class PickleImport:
    """One global the stream imports (GLOBAL, INST or STACK_GLOBAL)."""

    module: str
    name: str
    offset: int
    allowed: bool
    called: bool = False

    @property
    def qualified_name(self) -> str:
        return f"{self.module}.{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "name": self.name,
            "offset": self.offset,
            "allowed": self.allowed,
            "called": self.called,
        }


@dataclass
class PickleReport:
    """What a static walk of one file's pickle stream(s) found."""

    name: str
    protocol: int
    pickle_count: int
    opcode_count: int
    imports: list[PickleImport]
    findings: list[Finding]
    torch_legacy: bool = False
    persistent_ids: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "protocol": self.protocol,
            "pickle_count": self.pickle_count,
            "opcode_count": self.opcode_count,
            "imports": [i.to_dict() for i in self.imports],
            "findings": [f.to_dict() for f in self.findings],
            "torch_legacy": self.torch_legacy,
            "persistent_ids": self.persistent_ids,
        }


class _Opaque:
    """A value the scanner does not track (a tensor, a list, a call result)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<opaque>"


_OPAQUE = _Opaque()


@dataclass(frozen=True)
class _Global:
    module: str
    name: str
    index: int  # position in the imports list


class _Reader:
    """Forward-only reader with position tracking and bounded skipping."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._buffer = b""
        self._pos_in_buffer = 0
        self.offset = 0

    def _fill(self, minimum: int) -> None:
        available = len(self._buffer) - self._pos_in_buffer
        if available >= minimum:
            return
        parts = [self._buffer[self._pos_in_buffer:]]
        while available < minimum:
            chunk = self._stream.read(max(64 * 1024, minimum - available))
            if not chunk:
                break
            parts.append(chunk)
            available += len(chunk)
        self._buffer = b"".join(parts)
        self._pos_in_buffer = 0

    def read(self, n: int) -> bytes:
        self._fill(n)
        data = self._buffer[self._pos_in_buffer:self._pos_in_buffer + n]
        if len(data) < n:
            raise PickleScanError(
                f"stream ends at byte {self.offset + len(data)} inside an opcode that needs {n} bytes (truncated file?)"
            )
        self._pos_in_buffer += n
        self.offset += n
        return data

    def peek_byte(self) -> int | None:
        self._fill(1)
        if self._pos_in_buffer >= len(self._buffer):
            return None
        return self._buffer[self._pos_in_buffer]

    def skip(self, n: int) -> None:
        """Discard n bytes in 1 MiB steps, never holding them all."""
        remaining = n
        start = self.offset
        while remaining > 0:
            step = min(remaining, MiB)
            try:
                self.read(step)
            except PickleScanError:
                raise PickleScanError(
                    f"an argument at byte {start} claims {n:,} bytes but the stream ends at byte {self.offset} (truncated file?)"
                ) from None
            remaining -= step

    def readline(self) -> bytes:
        """Read through the next newline (pickle protocol 0 arguments)."""
        collected = bytearray()
        while True:
            self._fill(1)
            if self._pos_in_buffer >= len(self._buffer):
                raise PickleScanError(f"stream ends at byte {self.offset} inside a text argument (truncated file?)")
            window = self._buffer[self._pos_in_buffer:self._pos_in_buffer + _MAX_LINE_BYTES]
            newline = window.find(b"\n")
            take = len(window) if newline < 0 else newline + 1
            collected += window[:take]
            self._pos_in_buffer += take
            self.offset += take
            if newline >= 0:
                return bytes(collected)
            if len(collected) > _MAX_LINE_BYTES:
                raise PickleScanError(
                    f"text argument at byte {self.offset - len(collected)} is longer than {_MAX_LINE_BYTES} bytes; not a real pickle"
                )


def _decode_line(op: pickletools.OpcodeInfo, line: bytes) -> Any:
    """Decode a newline-terminated argument with pickletools' own readers."""
    try:
        return op.arg.reader(io.BytesIO(line))
    except (ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise PickleScanError(f"{op.name} has a malformed argument: {exc}") from exc


def _decode_name_line(op: pickletools.OpcodeInfo, line: bytes) -> str:
    try:
        return line[:-1].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PickleScanError(f"{op.name} names a module or attribute that is not UTF-8 ({exc.reason})") from exc


class _Machine:
    """Symbolic unpickler: tracks stack shape, memo, strings and globals only."""

    def __init__(self, *, reader: _Reader, limits: IntakeLimits, name: str) -> None:
        self.reader = reader
        self.limits = limits
        self.name = name
        self.imports: list[PickleImport] = []
        self.findings: list[Finding] = []
        self.opcode_count = 0
        self.protocol = 0
        self.persistent_ids = 0

    # -- helpers -----------------------------------------------------------
    def _error(self, offset: int, message: str) -> PickleScanError:
        return PickleScanError(f"{self.name}: byte {offset}: {message}")

    def _pop(self, stack: list[Any], offset: int, opname: str) -> Any:
        if not stack:
            raise self._error(offset, f"{opname} needs a value but the stack is empty (malformed pickle)")
        return stack.pop()

    def _import(self, module: Any, name: Any, offset: int, opname: str) -> _Global:
        if not isinstance(module, str) or not isinstance(name, str):
            self.findings.append(
                Finding(
                    "critical",
                    "pickle_dynamic_import",
                    f"{self.name}: {opname} at byte {offset} imports a name the scanner cannot read statically; "
                    "only an attacker builds imports this way",
                    {"offset": offset, "opcode": opname},
                )
            )
            module, name = "<dynamic>", "<dynamic>"
        qualified = f"{module}.{name}"
        allowed = qualified in PICKLE_ALLOWED_GLOBALS
        self.imports.append(PickleImport(module=module, name=name, offset=offset, allowed=allowed))
        return _Global(module=module, name=name, index=len(self.imports) - 1)

    def _mark_called(self, value: Any) -> None:
        if isinstance(value, _Global):
            old = self.imports[value.index]
            self.imports[value.index] = PickleImport(old.module, old.name, old.offset, old.allowed, True)

    def _read_length_prefixed(self, op: pickletools.OpcodeInfo) -> Any:
        """Arguments whose length comes first: skip long ones, decode short ones."""
        n = op.arg.n
        if n == pickletools.TAKEN_FROM_ARGUMENT1:
            length = self.reader.read(1)[0]
        elif n == pickletools.TAKEN_FROM_ARGUMENT4:
            length = struct.unpack("<i", self.reader.read(4))[0]
            if length < 0:
                raise self._error(self.reader.offset, f"{op.name} has a negative length {length}")
        elif n == pickletools.TAKEN_FROM_ARGUMENT4U:
            length = struct.unpack("<I", self.reader.read(4))[0]
        else:  # TAKEN_FROM_ARGUMENT8U
            length = struct.unpack("<Q", self.reader.read(8))[0]
        if length > self.limits.max_pickle_arg_bytes:
            # Not needed to know what is imported; read past it without keeping it.
            self.reader.skip(length)
            return _OPAQUE
        raw = self.reader.read(length)
        if op.name in ("LONG1", "LONG4"):
            return int.from_bytes(raw, "little", signed=True)
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"):
            try:
                return raw.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError as exc:
                raise self._error(self.reader.offset, f"{op.name} holds invalid UTF-8 ({exc.reason})") from exc
        if op.name in ("SHORT_BINSTRING", "BINSTRING"):
            # Python 2 str; Python 3 decodes it as ASCII by default.
            return raw.decode("latin-1")
        return _OPAQUE  # bytes / bytearray payloads are data, not names

    # -- main loop ---------------------------------------------------------
    def run_one(self) -> Any:
        """Walk one pickle up to its STOP; return the symbolic value it would load."""
        stack: list[Any] = []
        metastack: list[list[Any]] = []
        memo: dict[int, Any] = {}
        reader = self.reader
        while True:
            offset = reader.offset
            code_byte = reader.read(1)
            op = pickletools.code2op.get(code_byte.decode("latin-1"))
            if op is None:
                raise self._error(offset, f"unknown opcode 0x{code_byte[0]:02x} (not a pickle, or corrupted)")
            self.opcode_count += 1
            if self.opcode_count > self.limits.max_pickle_opcodes:
                raise self._error(offset, f"more than {self.limits.max_pickle_opcodes:,} opcodes; refusing to scan further")
            name = op.name

            # Read the argument.
            arg: Any = None
            if op.arg is not None:
                n = op.arg.n
                if n >= 0:
                    arg = op.arg.reader(io.BytesIO(reader.read(n)))
                elif n == pickletools.UP_TO_NEWLINE:
                    if op.arg.name == "stringnl_noescape_pair":
                        # As pickle does: each of the two lines is UTF-8 text.
                        arg = (_decode_name_line(op, reader.readline()), _decode_name_line(op, reader.readline()))
                    else:
                        arg = _decode_line(op, reader.readline())
                else:
                    arg = self._read_length_prefixed(op)

            # Apply its effect on the symbolic stack.
            if name == "PROTO":
                if arg > _HIGHEST_PROTOCOL:
                    raise self._error(offset, f"pickle protocol {arg} does not exist (highest is {_HIGHEST_PROTOCOL})")
                self.protocol = max(self.protocol, arg)
            elif name == "FRAME":
                pass
            elif name == "STOP":
                return self._pop(stack, offset, name)
            elif name == "MARK":
                metastack.append(stack)
                stack = []
            elif name == "POP":
                if stack:
                    stack.pop()
                elif metastack:
                    stack = metastack.pop()
                else:
                    raise self._error(offset, "POP on an empty stack (malformed pickle)")
            elif name == "POP_MARK":
                if not metastack:
                    raise self._error(offset, "POP_MARK without a MARK (malformed pickle)")
                stack = metastack.pop()
            elif name == "DUP":
                top = self._pop(stack, offset, name)
                stack += [top, top]
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                if not stack:
                    raise self._error(offset, f"{name} on an empty stack (malformed pickle)")
                if not isinstance(arg, int) or arg < 0:
                    raise self._error(offset, f"{name} has an invalid memo index {arg!r}")
                memo[arg] = stack[-1]
            elif name == "MEMOIZE":
                if not stack:
                    raise self._error(offset, "MEMOIZE on an empty stack (malformed pickle)")
                memo[len(memo)] = stack[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                if arg not in memo:
                    raise self._error(offset, f"{name} reads memo slot {arg!r} which was never written (malformed pickle)")
                stack.append(memo[arg])
            elif name in ("GLOBAL", "INST"):
                module, attr = arg
                glob = self._import(module, attr, offset, name)
                if name == "INST":
                    if not metastack:
                        raise self._error(offset, "INST without a MARK (malformed pickle)")
                    stack = metastack.pop()
                    self._mark_called(glob)
                    stack.append(_OPAQUE)
                else:
                    stack.append(glob)
            elif name == "STACK_GLOBAL":
                attr = self._pop(stack, offset, name)
                module = self._pop(stack, offset, name)
                stack.append(self._import(module, attr, offset, name))
            elif name in ("EXT1", "EXT2", "EXT4"):
                self.findings.append(
                    Finding(
                        "critical",
                        "pickle_extension_registry",
                        f"{self.name}: {name} at byte {offset} imports through the copyreg extension registry; "
                        "the scanner cannot tell what it names, so it is treated as arbitrary code",
                        {"offset": offset, "opcode": name, "code": arg},
                    )
                )
                self.imports.append(PickleImport(module="<copyreg>", name=str(arg), offset=offset, allowed=False))
                stack.append(_OPAQUE)
            elif name == "REDUCE":
                self._pop(stack, offset, name)
                self._mark_called(self._pop(stack, offset, name))
                stack.append(_OPAQUE)
            elif name == "NEWOBJ":
                self._pop(stack, offset, name)
                self._mark_called(self._pop(stack, offset, name))
                stack.append(_OPAQUE)
            elif name == "NEWOBJ_EX":
                self._pop(stack, offset, name)
                self._pop(stack, offset, name)
                self._mark_called(self._pop(stack, offset, name))
                stack.append(_OPAQUE)
            elif name == "OBJ":
                if not metastack:
                    raise self._error(offset, "OBJ without a MARK (malformed pickle)")
                items = stack
                stack = metastack.pop()
                if not items:
                    raise self._error(offset, "OBJ with nothing after its MARK (malformed pickle)")
                self._mark_called(items[0])
                stack.append(_OPAQUE)
            elif name in ("PERSID", "BINPERSID"):
                # PyTorch stores tensors as persistent ids resolved by its own
                # loader; they import nothing by themselves.
                if name == "BINPERSID":
                    self._pop(stack, offset, name)
                self.persistent_ids += 1
                stack.append(_OPAQUE)
            elif name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE",
                          "SHORT_BINSTRING", "BINSTRING", "STRING"):
                stack.append(arg if isinstance(arg, str) else (arg.decode("latin-1") if isinstance(arg, bytes) else _OPAQUE))
            elif name in ("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4"):
                stack.append(arg if isinstance(arg, int) else _OPAQUE)
            else:
                # Generic effect from pickletools' stack description.
                before = op.stack_before
                if pickletools.markobject in before:
                    if not metastack:
                        raise self._error(offset, f"{name} without a MARK (malformed pickle)")
                    stack = metastack.pop()
                    extra = before.index(pickletools.markobject)
                else:
                    extra = len(before)
                for _ in range(extra):
                    self._pop(stack, offset, name)
                stack.extend(_OPAQUE for _ in op.stack_after)


def _import_finding(*, name: str, imp: PickleImport) -> Finding:
    runs_code = imp.module.split(".")[0] in _PICKLE_CODE_EXECUTION_MODULES
    how = "and calls it" if imp.called else "(imported; loading may call it)"
    if runs_code:
        message = (
            f"{name}: the pickle imports {imp.qualified_name} {how}; loading this file would run "
            "code or commands chosen by its author"
        )
    else:
        message = (
            f"{name}: the pickle imports {imp.qualified_name} {how}, which is not needed to rebuild "
            "tensors; loading this file could run code chosen by its author"
        )
    return Finding("critical", "pickle_imports_callable", message, {"file": name, **imp.to_dict()})


def pickle_scan(*, stream: BinaryIO, name: str = "pickle", limits: IntakeLimits = IntakeLimits()) -> PickleReport:
    """Statically walk every pickle in `stream` and report imports and findings.

    Handles a plain pickle, several concatenated pickles, and the legacy
    torch.save layout (5 pickles then raw storage bytes). Raises
    `PickleScanError` if the stream is malformed or truncated; the caller
    must reject the file in that case.
    """
    reader = _Reader(stream)
    machine = _Machine(reader=reader, limits=limits, name=name)
    findings: list[Finding] = []
    pickle_count = 0
    torch_legacy = False
    trailing: int | None = None
    try:
        while True:
            value = machine.run_one()
            pickle_count += 1
            if pickle_count == 1 and value == TORCH_LEGACY_MAGIC:
                torch_legacy = True
            if torch_legacy and pickle_count == _TORCH_LEGACY_PICKLE_COUNT:
                break  # the rest is raw tensor storage, not pickle
            next_byte = reader.peek_byte()
            if next_byte is None:
                break
            if next_byte != _PROTO_OPCODE:
                trailing = reader.offset
                break
    except PickleScanError as exc:
        if str(exc).startswith(f"{name}:"):
            raise
        raise PickleScanError(f"{name}: {exc}") from exc
    except (ValueError, OverflowError, struct.error, UnicodeDecodeError, IndexError, KeyError, TypeError) as exc:
        # pickletools' argument readers raise plain ValueError & co on junk.
        raise PickleScanError(f"{name}: byte {reader.offset}: malformed pickle ({exc})") from exc
    except RecursionError as exc:  # pragma: no cover - the walker is iterative
        raise PickleScanError(f"{name}: malformed pickle ({exc})") from exc

    imports = machine.imports
    findings.extend(machine.findings)
    seen: set[tuple[str, str]] = set()
    for imp in imports:
        if imp.allowed or imp.module in ("<dynamic>", "<copyreg>"):
            continue
        if (imp.module, imp.name) in seen:
            continue
        seen.add((imp.module, imp.name))
        findings.append(_import_finding(name=name, imp=imp))
    findings.append(
        Finding(
            "medium",
            "pickle_format",
            f"{name}: pickle-based file; loading it with torch.load or pickle runs code chosen by its author, "
            "so it must not be loaded outside a sandbox. Ask the vendor for safetensors.",
            {
                "file": name,
                "protocol": machine.protocol,
                "pickles": pickle_count,
                "imports": sorted({i.qualified_name for i in imports}),
                "torch_legacy": torch_legacy,
            },
        )
    )
    if trailing is not None:
        findings.append(
            Finding(
                "low",
                "pickle_trailing_data",
                f"{name}: {pickle_count} pickle(s) end at byte {trailing} but the file continues; "
                "the trailing bytes are not read by pickle but may be read by other loaders",
                {"file": name, "offset": trailing},
            )
        )
    return PickleReport(
        name=name,
        protocol=machine.protocol,
        pickle_count=pickle_count,
        opcode_count=machine.opcode_count,
        imports=imports,
        findings=findings,
        torch_legacy=torch_legacy,
        persistent_ids=machine.persistent_ids,
    )


def pickle_scan_file(*, path: str | Path, limits: IntakeLimits = IntakeLimits()) -> PickleReport:
    """`pickle_scan` on a local file."""
    path = Path(path)
    with path.open("rb") as handle:
        return pickle_scan(stream=handle, name=path.name, limits=limits)


def pickle_looks_like(*, head: bytes) -> bool:
    """Cheap sniff: does `head` start like a pickle?

    Protocol 2-5 pickles start with PROTO (0x80) and a protocol byte. Protocol
    0/1 pickles have no magic, so we walk the head and accept it only if it
    reaches STOP without error and imports or builds something: ASCII text
    almost never does, while a crafted `cos\\nsystem\\n...` does.
    """
    if len(head) >= 2 and head[0] == _PROTO_OPCODE and 2 <= head[1] <= _HIGHEST_PROTOCOL:
        return True
    if not head or pickletools.code2op.get(chr(head[0])) is None:
        return False
    machine = _Machine(reader=_Reader(io.BytesIO(head)), limits=IntakeLimits(), name="head")
    try:
        machine.run_one()
    except PickleScanError as exc:
        # A head cut off mid-pickle that already imported a global is a
        # pickle (a large protocol 0 file); any other error means "not one".
        return "stream ends" in str(exc) and bool(machine.imports) and machine.opcode_count >= 3
    except (ValueError, OverflowError, struct.error, UnicodeDecodeError, IndexError, KeyError, TypeError):
        return False
    return machine.opcode_count >= 2


# --------------------------------------------------------------------------- NumPy .npy

NPY_MAGIC = b"\x93NUMPY"
# NumPy writes headers of a few hundred bytes; format 2.0 allows 4 GiB but no
# real file comes near 1 MiB.
_NPY_MAX_HEADER = MiB
_NPY_OBJECT_DTYPE = re.compile(r"^[|<>=]?O\d*$")


def npy_object_data_offset(*, head: bytes) -> int | None:
    """For a NumPy .npy file whose dtype holds Python objects, where its pickle starts.

    `np.load(..., allow_pickle=True)` unpickles such data, so it is scanned
    like any pickle. Returns None for plain numeric arrays (and non-.npy
    input); raises `PickleScanError` if the header is malformed. The header
    is a Python literal, read with `ast.literal_eval` (no code runs).
    """
    if not head.startswith(NPY_MAGIC) or len(head) < 10:
        return None
    major = head[6]
    if major == 1:
        length, start = int.from_bytes(head[8:10], "little"), 10
    elif major in (2, 3) and len(head) >= 12:
        length, start = int.from_bytes(head[8:12], "little"), 12
    else:
        raise PickleScanError(f"npy format version {major} is unknown")
    if length > _NPY_MAX_HEADER:
        raise PickleScanError(f"npy header claims {length:,} bytes (limit {_NPY_MAX_HEADER:,})")
    raw = head[start:start + length]
    if len(raw) < length:
        raise PickleScanError("npy header is cut short (truncated file?)")
    try:
        header = ast.literal_eval(raw.decode("utf-8" if major == 3 else "latin-1"))
    except (ValueError, SyntaxError, RecursionError, MemoryError, UnicodeDecodeError, TypeError) as exc:
        raise PickleScanError(f"npy header is not a Python literal ({type(exc).__name__})") from exc
    if not isinstance(header, dict) or "descr" not in header:
        raise PickleScanError("npy header has no 'descr' (dtype)")
    pending = [header["descr"]]
    while pending:
        item = pending.pop()
        if isinstance(item, str) and _NPY_OBJECT_DTYPE.match(item):
            return start + length
        if isinstance(item, (list, tuple)):
            pending.extend(item)
    return None
