"""Unpacking downloaded archives into the data cache without trusting their member names.

An archive from the network may name members `/etc/x`, `../../x`, or carry a symlink that points outside the
target and a later member written through it. Every member is checked before anything is written; extraction
goes to `<dest>.partial`, which is renamed to `<dest>` only when everything (and the caller's check) succeeded,
so a cache directory is either complete or absent. Nothing here imports torch.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

from ratbench.errors import DataFormatError

# tarfile's own safety filter exists from Python 3.10.12 / 3.11.4 on; older interpreters rely on the checks here
_FILTER_ERRORS: tuple[type[Exception], ...] = (tarfile.FilterError,) if hasattr(tarfile, "FilterError") else ()

FIX = "Delete the download and fetch again; if it happens again, the server or mirror serves a bad archive."


def _parts(name: str) -> list[str] | None:
    """The path components of a member name, or None if it is absolute or climbs out with `..`.

    Backslashes count as separators too: harmless on POSIX, but a Windows user would otherwise get `..\\x`.
    """
    if not name or "\x00" in name:
        return None
    if name.startswith(("/", "\\")) or (len(name) >= 2 and name[1] == ":" and name[0].isalpha()):
        return None
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    return parts


def _inside(base: list[str], target: str, links: set[str]) -> bool:
    """Whether `target`, relative to the directory `base`, stays inside the archive root without passing
    through another link member (a link to `.` followed by `..` would otherwise escape lexically unseen)."""
    if not target or target.startswith(("/", "\\")) or (len(target) >= 2 and target[1] == ":"):
        return False
    here = list(base)
    for part in target.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not here:
                return False
            here.pop()
            continue
        here.append(part)
        if "/".join(here) in links:
            return False
    return True


def _through_link(parts: list[str], links: set[str]) -> bool:
    return any("/".join(parts[:i]) in links for i in range(1, len(parts)))


def _replace_dir(partial: Path, dest: Path) -> None:
    """Put `partial` at `dest`; an existing `dest` is moved aside first and restored if the rename fails."""
    old = dest.with_name(dest.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    had_old = dest.exists()
    if had_old:
        os.replace(dest, old)
    try:
        os.replace(partial, dest)
    except BaseException:
        if had_old:
            os.replace(old, dest)
        raise
    if had_old:
        shutil.rmtree(old, ignore_errors=True)


def _run(archive: Path, dest: Path, extract: Callable[[Path], None], check: Callable[[Path], object] | None) -> Path:
    dest = Path(dest)
    partial = dest.with_name(dest.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)  # left by an interrupted earlier run
    partial.mkdir(parents=True)
    try:
        extract(partial)
        if check is not None:
            check(partial)
        _replace_dir(partial, dest)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return dest


def _tar_members(archive: Path, tar: tarfile.TarFile, max_total_bytes: int | None) -> list[tarfile.TarInfo]:
    links: set[str] = set()
    checked: list[tarfile.TarInfo] = []
    total = 0
    for m in tar.getmembers():
        parts = _parts(m.name)
        if parts is None:
            raise DataFormatError(archive, f"refused: member {m.name!r} has an absolute path or a '..' component.",
                                  fix=FIX)
        if _through_link(parts, links):
            raise DataFormatError(archive, f"refused: member {m.name!r} would be written through a link member.",
                                  fix=FIX)
        if m.isdev():
            raise DataFormatError(archive, f"refused: member {m.name!r} is a device file or FIFO.", fix=FIX)
        if m.issym():
            if not _inside(parts[:-1], m.linkname, links):
                raise DataFormatError(archive, f"refused: symlink {m.name!r} points outside the target "
                                      f"({m.linkname!r}).", fix=FIX)
            links.add("/".join(parts))
        elif m.islnk():
            if not _inside([], m.linkname, links):
                raise DataFormatError(archive, f"refused: hard link {m.name!r} points outside the target "
                                      f"({m.linkname!r}).", fix=FIX)
            links.add("/".join(parts))
        elif not (m.isfile() or m.isdir()):
            raise DataFormatError(archive, f"refused: member {m.name!r} has an unsupported type.", fix=FIX)
        total += max(m.size, 0)
        if max_total_bytes is not None and total > max_total_bytes:
            raise DataFormatError(archive, f"refused: the members unpack to more than {max_total_bytes} bytes.",
                                  fix=FIX)
        checked.append(m)
    return checked


def safe_extract_tar(path: str | Path, dest: str | Path, *, check: Callable[[Path], object] | None = None,
                     max_total_bytes: int | None = None) -> Path:
    """Unpack a (possibly compressed) tar archive into `dest`, refusing unsafe members; returns `dest`.

    Refused: absolute names, `..` components, symlinks or hard links pointing outside the target, members
    written through a link, device files and FIFOs. `check(partial_dir)` may raise to reject the content
    before it is put in place. A truncated or corrupt archive raises `DataFormatError` naming it.
    """
    archive = Path(path)

    def extract(partial: Path) -> None:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = _tar_members(archive, tar, max_total_bytes)
                if hasattr(tarfile, "data_filter"):
                    # a second line of defence where Python has it (3.10.12+, 3.11.4+)
                    tar.extractall(partial, members=members, filter="data")
                else:  # pragma: no cover - older interpreters
                    tar.extractall(partial, members=members)
        except DataFormatError:
            raise
        except _FILTER_ERRORS as err:
            raise DataFormatError(archive, f"refused by the tar safety filter: {err}.", fix=FIX) from None
        except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
            raise DataFormatError(archive, f"could not be unpacked as a tar archive (truncated or corrupt?): {err}.",
                                  fix=FIX) from None

    return _run(archive, Path(dest), extract, check)


def _zip_mode(info: zipfile.ZipInfo) -> int:
    return (info.external_attr >> 16) & 0xFFFF


def safe_extract_zip(path: str | Path, dest: str | Path, *, check: Callable[[Path], object] | None = None,
                     max_total_bytes: int | None = None) -> Path:
    """Unpack a zip archive into `dest` with the same refusals as `safe_extract_tar`; returns `dest`.

    zipfile writes a symlink entry as a small file holding the target, which is never what a data archive
    means, so symlink entries are refused whether or not they point inside.
    """
    archive = Path(path)

    def extract(partial: Path) -> None:
        try:
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                total = 0
                for info in infos:
                    if _parts(info.filename) is None:
                        raise DataFormatError(archive, f"refused: member {info.filename!r} has an absolute path "
                                              "or a '..' component.", fix=FIX)
                    mode = _zip_mode(info)
                    if stat.S_ISLNK(mode):
                        target = zf.read(info).decode("utf-8", "replace")
                        where = "inside" if _inside(_parts(info.filename)[:-1], target, set()) else "outside"
                        raise DataFormatError(archive, f"refused: member {info.filename!r} is a symlink (to "
                                              f"{target!r}, {where} the target).", fix=FIX)
                    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                        raise DataFormatError(archive, f"refused: member {info.filename!r} is a device file.",
                                              fix=FIX)
                    total += info.file_size
                    if max_total_bytes is not None and total > max_total_bytes:
                        raise DataFormatError(archive, f"refused: the members unpack to more than "
                                              f"{max_total_bytes} bytes.", fix=FIX)
                for info in infos:
                    zf.extract(info, partial)
        except DataFormatError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
            raise DataFormatError(archive, f"could not be unpacked as a zip archive (truncated or corrupt?): {err}.",
                                  fix=FIX) from None

    return _run(archive, Path(dest), extract, check)


def safe_extract(path: str | Path, dest: str | Path, *, check: Callable[[Path], object] | None = None,
                 max_total_bytes: int | None = None) -> Path:
    """Zip or tar, decided by the file's first bytes (a saved HTML error page is neither, and says so)."""
    archive = Path(path)
    with open(archive, "rb") as fh:
        head = fh.read(512)
    if head[:4] == b"PK\x03\x04" or head[:4] == b"PK\x05\x06":
        return safe_extract_zip(archive, dest, check=check, max_total_bytes=max_total_bytes)
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00" or tarfile.is_tarfile(archive):
        return safe_extract_tar(archive, dest, check=check, max_total_bytes=max_total_bytes)
    raise DataFormatError(archive, f"is neither a tar nor a zip archive; it starts with "
                          f"{head[:40].decode('latin-1', 'replace')!r} (an HTML error page?).", fix=FIX)


def _holders(root: Path, marker: str) -> Iterable[Path]:
    for here, dirs, files in os.walk(root):  # os.walk does not follow directory symlinks
        dirs.sort()
        if marker in files and (Path(here) / marker).is_file():
            yield Path(here)


def find_task_root(extracted_dir: str | Path, marker: str = "train.jsonl", name: str | None = None) -> Path:
    """The folder under `extracted_dir` that holds `marker` (archives differ: `movies/`, `data/cose/`, ...).

    With `name`, the folder must be called `name` (or be `extracted_dir` itself): an archive that also holds
    a training variant (`cose` next to `cose_simplified`) never yields the variant instead of the task asked
    for. Raises `DataFormatError` when no folder, or more than one, qualifies.
    """
    root = Path(extracted_dir)
    found = list(_holders(root, marker))
    if name is not None:
        found = [p for p in found if p.name == name or p == root]
    if len(found) == 1:
        return found[0]
    every = [str(p.relative_to(root)) or "." for p in _holders(root, marker)]
    what = f"folder named {name!r} holding {marker}" if name else f"folder holding {marker}"
    if not found:
        seen = f" (found {marker} only in: {', '.join(every)})" if every else ""
        raise DataFormatError(root, f"has no {what}{seen}.",
                              fix="Check that the archive is the right one, or fetch it again.")
    raise DataFormatError(root, f"has several candidates for the {what}: "
                          f"{', '.join(str(p.relative_to(root)) or '.' for p in found)}.",
                          fix="Pass the task's folder explicitly.")
