"""Downloads for `data fetch`: pooch with a rich progress bar, digest verification, atomic placement.

Each family or vector resource names its `Remote` (URL, file name, digest and the digest's source; see
docs/datasets.md (#hotel, #word-vectors, #cache-and-integrity) for where every digest comes from). Environment
overrides, for mirrors and tests:
`RATBENCH_MIRROR` (a base URL; the file name is appended), `RATBENCH_EXPECTED_SHA256_<KEY>` /
`RATBENCH_EXPECTED_MD5_<KEY>` (trust a file whose digest differs from the record; KEY is the remote's key,
e.g. HOTEL, GLOVE, GLOVE_STANFORD) and `RATBENCH_OFFLINE=1` (refuse to download).
"""

from __future__ import annotations

import os
from pathlib import Path

from ratbench.data.specs import Remote
from ratbench.errors import DownloadError


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
