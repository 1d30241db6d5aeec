"""Placing validated files under the data root: staged in a temp folder, swapped in with a rename."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path, PurePosixPath

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
