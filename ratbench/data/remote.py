"""Fetching one file into the data cache: `<name>.part`, size and sha256 check, atomic rename.

Files with a published digest are checked against it. Files without one (most ERASER archives) are pinned on
first download: the sha256 is recorded in a small JSON pin store under the data root and every later download
must match it, so a silently changed upstream file is noticed. A failed download leaves nothing behind: no
`.part`, no partial extraction, no pin. Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ratbench import __version__
from ratbench.atomic import write_json
from ratbench.data.archives import safe_extract
from ratbench.data.download import RichProgress
from ratbench.errors import DataFormatError, DownloadError


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


class PinStore:
    """`{key: {sha256, size, url, time, ratbench}}` for files whose digest ratbench recorded itself."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _load(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataFormatError(self.path, f"is not a valid pin store ({err}).",
                                  fix="Delete it; the next download records the digests again.") from None
        if not isinstance(data, dict):
            raise DataFormatError(self.path, "is not a valid pin store (expected a JSON object).",
                                  fix="Delete it; the next download records the digests again.")
        return data

    def get(self, key: str) -> dict[str, Any] | None:
        return self._load().get(key)

    def record(self, key: str, sha256: str, size: int, url: str) -> dict[str, Any]:
        data = self._load()
        entry = {"sha256": sha256, "size": size, "url": url, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                 "ratbench": __version__}
        data[key] = entry
        write_json(self.path, data)
        return entry


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _expected_digest(expected_sha256: str | None, pins: PinStore, key: str) -> tuple[str | None, str]:
    if expected_sha256:
        return expected_sha256.lower(), "the digest pinned for this file"
    entry = pins.get(key)
    if entry:
        return str(entry["sha256"]).lower(), (f"the digest recorded on first download ({entry.get('time', '?')}, "
                                              f"in {pins.path})")
    return None, ""


def fetch_file(url: str, dest_dir: str | Path, filename: str, expected_sha256: str | None,
               expected_size: int | None, pin_store: str | Path, key: str, *, record: bool = True,
               digest_source: str | None = None, override_hint: str | None = None, timeout: float = 60) -> Path:
    """Download `url` to `dest_dir/filename` via `dest_dir/filename.part`; returns the final path.

    `expected_sha256` None means "not published": the pin store's entry for `key` is used if there is one,
    otherwise the digest of this download is recorded there (unless `record` is False, for callers that
    record only after unpacking succeeded; they call `PinStore.record` themselves). Raises `DownloadError`
    for HTTP errors, a connection cut short, a size or digest mismatch; the `.part` file is always removed.
    """
    final, actual, size, unpinned = _fetch(url, dest_dir, filename, expected_sha256, expected_size, pin_store, key,
                                           digest_source, override_hint, timeout)
    if unpinned and record:
        _record_first(PinStore(pin_store), key, actual, size, url, filename)
    return final


def _record_first(pins: PinStore, key: str, actual: str, size: int, url: str, filename: str) -> None:
    pins.record(key, actual, size, url)
    _say(f"{filename}: no published digest; sha256 {actual} recorded on first download in {pins.path}. "
         "Later downloads must match it.")


def _fetch(url: str, dest_dir: str | Path, filename: str, expected_sha256: str | None, expected_size: int | None,
           pin_store: str | Path, key: str, digest_source: str | None, override_hint: str | None,
           timeout: float) -> tuple[Path, str, int, bool]:
    """The download itself; returns (final path, sha256, size, whether no digest was known)."""
    import pooch
    import requests

    if os.environ.get("RATBENCH_OFFLINE") == "1":
        raise DownloadError(f"RATBENCH_OFFLINE=1 is set, so {url} is not downloaded. Unset it, or place the file "
                            "with `ratbench data import`.")
    pins = PinStore(pin_store)
    digest, source = _expected_digest(expected_sha256, pins, key)
    if digest_source and expected_sha256:
        source = digest_source
    if expected_sha256:
        hint = override_hint or "override the pinned digest"
    else:
        hint = f"remove the entry {key!r} from {pins.path}"
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / filename
    part = dest_dir / f"{filename}.part"
    part.unlink(missing_ok=True)  # a stale one from an interrupted run is never resumed
    progress = RichProgress(filename)
    try:
        try:
            pooch.HTTPDownloader(progressbar=progress, timeout=timeout)(url, str(part), None)
        except requests.exceptions.HTTPError as err:
            code = err.response.status_code if err.response is not None else "an error"
            reason = f" ({err.response.reason})" if err.response is not None and err.response.reason else ""
            raise DownloadError(f"{url}: the server answered {code}{reason}, so {filename} was not downloaded and "
                                "nothing was kept. Check the URL (or the mirror set in RATBENCH_MIRROR), or "
                                "place a local copy with `ratbench data import`.") from None
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.Timeout) as err:
            raise DownloadError(f"{url}: the download failed or was cut short ({type(err).__name__}); nothing "
                                "was kept. Run the same command again; if it keeps failing, the server may be "
                                "down, or use `ratbench data import` with a local copy.") from None
        except requests.exceptions.RequestException as err:
            raise DownloadError(f"{url}: the download could not start ({type(err).__name__}: {err}); nothing was "
                                "kept. Check the URL.") from None
        finally:
            progress.close()
        size = part.stat().st_size
        if expected_size is not None and size != expected_size:
            raise DownloadError(f"{url}: received {size:,} bytes, but {filename} is {expected_size:,} bytes. The "
                                "download was cut short or the server now serves a different file; nothing was "
                                "kept. Run the same command again.")
        actual = sha256_of(part)
        if digest is not None and actual != digest:
            raise DownloadError(f"{url}: the downloaded file's sha256 is {actual}, but {digest} was expected (from "
                                f"{source}). The file was deleted and nothing was kept. If the server now serves a "
                                f"different file that you trust, {hint} and fetch again.")
        os.replace(part, final)
    finally:
        part.unlink(missing_ok=True)
    return final, actual, size, digest is None


def fetch_and_extract(url: str, downloads_dir: str | Path, filename: str, dest: str | Path,
                      expected_sha256: str | None, expected_size: int | None, pin_store: str | Path, key: str, *,
                      check: Callable[[Path], object] | None = None, keep_archive: bool = False,
                      digest_source: str | None = None, override_hint: str | None = None,
                      max_total_bytes: int | None = None, timeout: float = 60) -> Path:
    """`fetch_file`, then unpack into `dest` (via `dest.partial`); returns `dest`.

    If unpacking fails (an unsafe member, a corrupt archive, or `check(partial_dir)` raising), the archive
    is deleted as well, so the cache holds nothing from this attempt, and no digest is pinned for it: a
    refused archive must not become the reference later downloads are held to.
    """
    downloads_dir = Path(downloads_dir)
    archive, actual, size, unpinned = _fetch(url, downloads_dir, filename, expected_sha256, expected_size,
                                             pin_store, key, digest_source, override_hint, timeout)
    try:
        placed = safe_extract(archive, dest, check=check, max_total_bytes=max_total_bytes)
    except DataFormatError as err:
        archive.unlink(missing_ok=True)
        _remove_if_empty(downloads_dir)
        raise DownloadError(f"{url}: the archive was refused: {err} The download was deleted and nothing was "
                            "kept.") from None
    except BaseException:
        archive.unlink(missing_ok=True)
        _remove_if_empty(downloads_dir)
        raise
    if unpinned:
        _record_first(PinStore(pin_store), key, actual, size, url, filename)
    if not keep_archive:
        archive.unlink(missing_ok=True)
        _remove_if_empty(downloads_dir)
    return placed


def _remove_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass  # not empty (other downloads) or already gone
