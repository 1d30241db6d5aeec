"""`data fetch`: pooch downloads with a rich progress bar, digest verification and atomic placement.

Digests are the public records of datasets.md §0.2 (third-party for R2A; authoritative md5 for gensim-data).
Environment overrides, for mirrors and tests: `RATBENCH_MIRROR` (a base URL; the file name is appended),
`RATBENCH_EXPECTED_SHA256_<KEY>` / `RATBENCH_EXPECTED_MD5_<KEY>` (trust a file whose digest differs from the
record; KEY is HOTEL, GLOVE or GLOVE_STANFORD) and `RATBENCH_OFFLINE=1` (refuse to download).
"""

from __future__ import annotations

import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ratbench.data.manifest import Manifest
from ratbench.errors import DownloadError, RatbenchError


@dataclass(frozen=True)
class Remote:
    key: str
    url: str
    filename: str
    digest: str  # "sha256:..." or "md5:..."
    digest_source: str
    notice: str = ""


REMOTES = {
    "hotel": Remote(
        "HOTEL", "https://people.csail.mit.edu/yujia/files/r2a/data.zip", "data.zip",
        "sha256:23fcb4cac883ec1de86d83a7747294d7fdae10061d3803fd4c34c930e66f25de",
        "a third-party record (nlp-unibo/pyhighlights)",
        "The HotelReview release of Bao et al. (2018) is for research purposes only.",
    ),
    "glove": Remote(
        "GLOVE",
        "https://github.com/RaRe-Technologies/gensim-data/releases/download/glove-wiki-gigaword-100/"
        "glove-wiki-gigaword-100.gz",
        "glove-wiki-gigaword-100.gz", "md5:40ec481866001177b8cd4cb0df92924f", "gensim-data's list.json",
    ),
    "glove-stanford": Remote(
        "GLOVE_STANFORD", "https://nlp.stanford.edu/data/glove.6B.zip", "glove.6B.zip",
        "md5:056ea991adb4740ac6bf1b6d9b50408b", "a third-party record (wedavey/atnlp)",
    ),
}

BEER_MESSAGE = (
    "The BeerAdvocate data is not downloaded by ratbench: its owner asked for it to be withdrawn from public "
    "hosting, and the Lei et al. (2016) subsets are for research use only. Ask the authors (McAuley; Lei et al.) "
    "for the files reviews.aspect{0,1,2}.{train,heldout}.txt.gz and annotations.json, then run "
    "`ratbench data import beer DIR`."
)


class RichProgress:
    """The progress-bar protocol pooch's HTTPDownloader expects (total, update, reset, close), drawn by rich."""

    def __init__(self, description: str):
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        self._progress = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), transient=True)
        self._task = self._progress.add_task(description, total=None)
        self._progress.start()
        self.total: int | None = None

    def update(self, n: int) -> None:
        self._progress.update(self._task, advance=n, total=self.total)

    def reset(self) -> None:
        self._progress.reset(self._task, total=self.total)

    def close(self) -> None:
        self._progress.stop()


def _expected(remote: Remote) -> tuple[str, str]:
    for algo in ("sha256", "md5"):
        override = os.environ.get(f"RATBENCH_EXPECTED_{algo.upper()}_{remote.key}")
        if override:
            return f"{algo}:{override.lower()}", "an override in the environment"
    return remote.digest, remote.digest_source


def download(remote: Remote, dest_dir: Path) -> Path:
    """Download to `<name>.part` inside dest_dir, verify, rename; nothing is left behind on failure."""
    import pooch
    import requests

    if os.environ.get("RATBENCH_OFFLINE") == "1":
        raise DownloadError(f"RATBENCH_OFFLINE=1 is set, so {remote.url} is not downloaded. Unset it, or place "
                            "the file with `ratbench data import`.")
    mirror = os.environ.get("RATBENCH_MIRROR")
    url = f"{mirror.rstrip('/')}/{remote.filename}" if mirror else remote.url
    digest, source = _expected(remote)
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / remote.filename
    part = dest_dir / f"{remote.filename}.part"
    part.unlink(missing_ok=True)
    try:
        downloader = pooch.HTTPDownloader(progressbar=RichProgress(f"{remote.filename}"), timeout=60)
        downloader(url, str(part), None)
        actual = pooch.file_hash(str(part), alg=digest.split(":")[0])
        if actual != digest.split(":", 1)[1]:
            raise DownloadError(
                f"{url}: the downloaded file's {digest.split(':')[0]} is {actual}, but {digest.split(':', 1)[1]} "
                f"was expected (from {source}). The file was deleted. If the server now serves a different but "
                f"trusted file, set RATBENCH_EXPECTED_{digest.split(':')[0].upper()}_{remote.key}={actual} and "
                "fetch again."
            )
        os.replace(part, final)
    except requests.exceptions.HTTPError as err:
        code = err.response.status_code if err.response is not None else err
        raise DownloadError(f"{url}: the server answered {code}. Check the URL or RATBENCH_MIRROR, or use "
                            "`ratbench data import` with a local copy.") from None
    except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
            requests.exceptions.Timeout) as err:
        raise DownloadError(f"{url}: the download failed or was cut short ({type(err).__name__}). Nothing was kept; "
                            "run the same command again.") from None
    finally:
        part.unlink(missing_ok=True)
    return final


def _extract_hotel(archive: Path, root: Path) -> None:
    from ratbench.data.importer import import_hotel

    import_hotel(archive, root)  # validates every file and places hotel/ atomically


def fetch(name: str, root: Path, force: bool = False) -> list[Path]:
    """Fetch `hotel`, `glove` (gensim-data's file) or `glove-stanford` (the Stanford zip's 100d member)."""
    from rich.console import Console

    root = Path(root)
    console = Console(stderr=True)
    if name == "beer":
        raise RatbenchError(BEER_MESSAGE)
    if name not in REMOTES:
        raise RatbenchError(f"Cannot fetch {name!r}: choose hotel, glove or glove-stanford (beer is on request).")
    remote = REMOTES[name]
    downloads = root / "downloads"
    if name == "hotel":
        if (root / "hotel" / "data" / "target" / "hotel_Location.train").exists() and not force:
            return [root / "hotel"]
        if remote.notice:
            console.print(f"[yellow]{remote.notice}[/]")
        archive = download(remote, downloads)
        Manifest(root).record(archive, source=remote.url)
        _extract_hotel(archive, root)
        return [root / "hotel"]
    from ratbench.data.embeddings import GENSIM_NAME, STANFORD_NAME, import_glove

    target = root / "glove" / (GENSIM_NAME if name == "glove" else STANFORD_NAME)
    if target.exists() and not force:
        return [target]
    archive = download(remote, downloads)
    try:
        if name == "glove-stanford" and not zipfile.is_zipfile(archive):
            raise DownloadError(f"{archive} is not a zip archive.")
        placed = import_glove(archive, root)
        Manifest(root).record(placed, source=remote.url)
    finally:
        if name == "glove":
            archive.unlink(missing_ok=True)  # import_glove made its own copy
    shutil.rmtree(downloads / "tmp", ignore_errors=True)
    return [placed]
