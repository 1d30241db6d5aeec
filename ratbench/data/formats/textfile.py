"""Reading a (possibly gzipped) UTF-8 text file with errors that say where and what went wrong."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from ratbench.errors import DataFormatError

GZIP_MAGIC = b"\x1f\x8b"


def read_lines(path: Path, fix: str) -> list[str]:
    """All lines (without newlines) of a text file, gunzipping by magic bytes, not by name."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataFormatError(path, "file not found.", fix=fix) from None
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except EOFError:
            raise DataFormatError(path, "truncated gzip archive (it ends before its end-of-stream marker).",
                                  fix=fix) from None
        except (gzip.BadGzipFile, zlib.error, OSError) as err:
            raise DataFormatError(path, f"corrupt gzip archive ({err}).", fix=fix) from None
    elif path.suffix == ".gz":
        head = data[:40].decode("latin-1", "replace")
        raise DataFormatError(path, f"is named .gz but is not gzip data; it starts with {head!r} "
                              "(an HTML error page saved under the archive's name?).", fix=fix)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataFormatError(path, f"is not valid UTF-8 (byte offset {err.start}).", line=line, fix=fix) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
