"""Placing validated files under the data root: staged in a temp folder, swapped in with a rename."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from ratbench.data.manifest import Manifest, sha256_file
from ratbench.errors import RatbenchError


def safe_extract(zf: zipfile.ZipFile, dest: Path) -> None:
    """Extract, refusing members with absolute paths or `..` (a crafted archive must not write elsewhere)."""
    for member in zf.namelist():
        p = PurePosixPath(member)
        if p.is_absolute() or ".." in p.parts or member.startswith(("/", "\\")) or ":" in p.parts[0]:
            raise RatbenchError(f"{zf.filename}: refusing archive member {member!r} (absolute path or '..'); "
                                "the archive is not the expected release.")
    zf.extractall(dest)


def place_dir(staged: Path, final: Path) -> None:
    """Replace `final` by `staged` (a directory) with a rename, keeping the old copy until the swap."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    staged.rename(final)
    if old.exists():
        shutil.rmtree(old)


def file_count(folder: Path) -> int:
    return sum(1 for p in Path(folder).rglob("*") if p.is_file())


def tree_digest(folder: Path) -> str:
    """sha256 over the sorted `relative path<TAB>sha256` lines of every file under `folder` (the digest of a
    folder of documents, such as an ERASER task's docs/)."""
    h = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        h.update(f"{path.relative_to(folder).as_posix()}\t{sha256_file(path)}\n".encode())
    return h.hexdigest()


def digest_of(manifest: Manifest, path: Path) -> str:
    """A file's sha256 (recorded, or hashed now); a folder's tree digest, recorded when it was placed while it
    still holds as many files, else computed now."""
    path = Path(path)
    if not path.is_dir():
        return manifest.digest(path)
    entry = manifest.get(path)
    if entry and entry.get("files") == file_count(path):
        return str(entry["sha256"])
    return tree_digest(path)


def fingerprint_of(manifest: Manifest, path: Path) -> list[Any]:
    """[name, cheap identity] for a cache key: the recorded digest while the size (a folder: the file count)
    still matches, else size and modification time (a folder: its files' names, sizes and times)."""
    path = Path(path)
    entry = manifest.get(path)
    if path.is_dir():
        if entry and entry.get("files") == file_count(path):
            return [path.name, entry["sha256"]]
        h = hashlib.sha256()
        for p in sorted(q for q in path.rglob("*") if q.is_file()):
            st = p.stat()
            h.update(f"{p.relative_to(path).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        return [path.name, h.hexdigest()]
    st = path.stat()
    same = entry and entry.get("size") == st.st_size
    return [path.name, entry["sha256"] if same else f"{st.st_size}:{st.st_mtime_ns}"]
