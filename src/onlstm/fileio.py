"""Reading and writing files safely: one place for the project's file I/O rules.

* Reading: `read_bytes` gunzips by magic bytes (whatever the file's name) and turns every
  OS error into a `UserError` naming the file (a folder or a device is refused);
  `decode_utf8` drops a byte-order mark and names the line of a bad byte, `refuse_binary`
  the line of a NUL byte (a binary file), `refuse_control_characters` that of an escape
  sequence or another control character in a file that can hold none.
* Showing: `excerpt` is how a piece of a user's file appears in a message: escaped as
  Python's ``repr`` does (no raw control character reaches the terminal) and cut short.
* Writing: `atomic_write_bytes` / `atomic_write_text` write a temporary file beside the
  target, fsync it, rename it over the target and fsync the folder, so a crash or a full
  disk leaves either the old file or the new one, never a mix.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import stat
import zlib
from pathlib import Path
from typing import Any, Union

from .errors import UserError

__all__ = ["PathLike", "excerpt", "read_bytes", "decode_utf8", "refuse_binary", "refuse_control_characters", "parse_json", "read_text", "atomic_write_bytes",
           "atomic_write_text", "os_error"]

PathLike = Union[str, "os.PathLike[str]"]

_GZIP_MAGIC = b"\x1f\x8b"


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def os_error(path: PathLike, err: OSError, doing: str = "write") -> UserError:
    """An OS error (no space, read-only, permission, ...) as a one-line `UserError` naming
    ``path``: "PATH: cannot DOING: no space left on device" (the system's reason, lower-cased)."""
    reason = os.strerror(err.errno) if err.errno else str(err)
    return UserError(f"{path}: cannot {doing}: {reason[:1].lower() + reason[1:]}")


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably (temp file, fsync, rename, fsync folder).

    OS errors (no space, read-only folder, permission) become a `UserError` naming the file;
    the previous content of ``path`` is then untouched.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        raise os_error(path, e) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: PathLike, text: str) -> None:
    """`atomic_write_bytes` of UTF-8 text with ``\\n`` line ends."""
    atomic_write_bytes(path, text.encode("utf-8"))


def excerpt(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to about ``limit`` characters: how user input is shown in messages.

    ``repr`` escapes every character that is not printable (control bytes, ANSI escapes,
    lone surrogates, bidi overrides), so the excerpt is safe to print on any terminal."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + f"... ({len(value):,} characters)"
    shown = repr(value)
    return shown if len(shown) <= limit else shown[:limit] + "..."


def _is_device(path: Any) -> bool:
    try:
        mode = os.stat(path).st_mode
    except (OSError, TypeError):  # a Traversable inside a zip, or missing: read_bytes says
        return False
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode)


def read_bytes(path: Any, what: str = "file") -> bytes:
    """Raw bytes of `path` (a Path or an importlib.resources Traversable), gunzipped if needed.

    A folder or a device (``/dev/zero``) is refused; pipes (``<(zcat ...)``) are read."""
    try:
        if path.is_dir():
            raise UserError(f"{path}: is a directory, expected a {what}")
        if _is_device(path):
            raise UserError(f"{path}: is a device, expected a {what}")
        raw = path.read_bytes()
    except UserError:
        raise
    except FileNotFoundError:
        raise UserError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected a {what}") from None
    except PermissionError:
        raise UserError(f"{path}: permission denied") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read {what}: {e.strerror or e}") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise UserError(f"{path}: broken gzip file: {e}") from None
    return raw


def decode_utf8(raw: bytes, path: Any) -> str:
    """Decode UTF-8 (a leading byte-order mark is dropped). A binary file (`refuse_binary`), a
    UTF-16 file or a bad byte is a UserError naming the line (and offset) of the problem."""
    refuse_binary(raw, path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        start = e.start
        line = raw.count(b"\n", 0, start) + 1
        col = start - (raw.rfind(b"\n", 0, start) + 1)
        raise UserError(
            f"{path}: line {line}: not valid UTF-8 (byte 0x{raw[start]:02x} at byte offset {col} of the line, "
            f"offset {start} of the file); convert the file to UTF-8, e.g. with "
            f"`iconv -f latin1 -t utf-8`"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def refuse_binary(raw: bytes, path: Any) -> bytes:
    """``raw`` unchanged, or a UserError naming the line of its first NUL byte: a NUL never
    occurs in a UTF-8 or Latin-1 text file, so the file is binary (a model, an archive, an
    image, ...) or UTF-16 (said so when it starts with a UTF-16 byte-order mark)."""
    nul = raw.find(b"\0")
    if nul < 0:
        return raw
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise UserError(f"{path}: is UTF-16 text; convert it to UTF-8, e.g. with `iconv -f utf-16 -t utf-8`")
    line = raw.count(b"\n", 0, nul) + 1
    raise UserError(f"{path}: line {line}: binary data (a NUL byte at offset {nul}), expected a text file")


_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")  # C0 controls and DEL, not \t \n \v \f \r


def refuse_control_characters(text: str, path: Any) -> str:
    """``text`` unchanged, or a UserError naming the line and column of its first control
    character other than whitespace (an escape sequence, a bell, ...): a treebank never holds one."""
    found = _CONTROL.search(text)
    if found is None:
        return text
    start = found.start()
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    raise UserError(f"{path}: line {line}: control character {excerpt(found.group())} at column {column}, "
                    "expected text")


def parse_json(text: str, path: Any, what: str = "") -> Any:
    """The value of a JSON text, or a UserError ``"<path>: <what>not valid JSON (line N: why)"``;
    nesting too deep and integers of 4,300+ digits are UserErrors too (json raises others)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: {what}not valid JSON (line {err.lineno}: {err.msg})") from None
    except (ValueError, RecursionError) as err:
        raise UserError(f"{path}: {what}not valid JSON ({excerpt(str(err))})") from None


def read_text(path: PathLike) -> str:
    """The whole text of a UTF-8 (optionally gzipped) file; errors are UserErrors naming it."""
    path = path if hasattr(path, "read_bytes") else Path(path)
    return decode_utf8(read_bytes(path), path)

