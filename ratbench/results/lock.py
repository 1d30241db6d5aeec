"""A per-run lock so two `ratbench run` processes on one results directory never train the same run twice.

An OS advisory lock (flock on POSIX, msvcrt on Windows) on a hidden file beside the record: the OS drops it
when its holder exits for any reason, kill -9 included, so a dead run never blocks a resume. The lock file
is left in place (deleting it would let a third process lock a fresh inode while a second holds the old one).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def lock_path(record: Path) -> Path:
    return record.with_name(f".{record.stem}.lock")


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextmanager
def run_lock(record: Path) -> Iterator[bool]:
    """Yields True when this process holds the run's lock, False when another process is training it."""
    path = lock_path(Path(record))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        acquired = _try_lock(fd)
        if acquired:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        yield acquired
    finally:
        os.close(fd)  # closing releases the lock
