"""The data root's manifest: provenance and digest of every file ratbench downloaded or imported.

Kept as `manifest.json` at the data root, keyed by the file's path relative to the root. Loading
checks existence and size (cheap); `sha256` is computed once when the file arrives.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from ratbench import __version__
from ratbench.atomic import write_json


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


class Manifest:
    """Read-modify-write view of `<root>/manifest.json`."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.path = self.root / "manifest.json"
        self.entries: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            self.entries = json.loads(self.path.read_text(encoding="utf-8"))

    def key(self, file: str | Path) -> str:
        p = Path(file)
        try:
            return p.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return p.resolve().as_posix()

    def record(self, file: str | Path, source: str, sha256: str | None = None, **extra: Any) -> dict[str, Any]:
        """Add or replace the entry for `file` (hashing it unless the digest is given) and save."""
        p = Path(file)
        entry = {
            "source": source,
            "size": p.stat().st_size,
            "sha256": sha256 or sha256_file(p),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "ratbench": __version__,
            **extra,
        }
        self.entries[self.key(p)] = entry
        self.save()
        return entry

    def get(self, file: str | Path) -> dict[str, Any] | None:
        return self.entries.get(self.key(file))

    def digest(self, file: str | Path) -> str:
        """The recorded sha256 when the file's size still matches, else a fresh hash."""
        entry = self.get(file)
        p = Path(file)
        if entry and entry.get("size") == p.stat().st_size:
            return str(entry["sha256"])
        return sha256_file(p)

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(self.path, self.entries)
