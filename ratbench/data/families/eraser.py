"""ERASER (DeYoung et al. 2020) as a dataset family: `<root>/eraser/<archive>/.../<task>/` as published (reader:
`ratbench.data.formats.eraser`, docs/datasets-eraser.md).

Two families share the code: `eraser` holds the seven published tasks, `eraser-variants` the two training
variants ERASER's baselines train on (`esnli_flat`, `cose_simplified`), which are only read when named. A task
folder holds train/val/test.jsonl and `docs/` (one file per document) or one `docs.jsonl`; the family's files are
those four, a `docs/` folder standing for its documents (its digest covers every file in it, recorded when the
folder arrives). `data fetch` downloads the task's archive (pinned digest for Movies and MultiRC, recorded on
first download otherwise), validates every record before placing it, and records the files in the manifest;
`data import eraser PATH` takes a downloaded archive or an extracted folder holding one or more tasks.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ratbench.data.archives import find_task_root, safe_extract
from ratbench.data.corpus import TextCorpus
from ratbench.data.families.base import DatasetFamily, register_family
from ratbench.data.formats.eraser import (
    ERASER_TASKS,
    SPLIT_FILES,
    EraserTask,
    fetch_eraser_task,
    get_task,
    read_eraser_corpus,
)
from ratbench.data.manifest import Manifest
from ratbench.data.placing import file_count, place_dir, tree_digest
from ratbench.data.specs import DatasetSpec
from ratbench.errors import DataFormatError, RatbenchError


def task_of(spec: DatasetSpec) -> EraserTask:
    return get_task(str(spec.extra["task"]))


def archive_dir(root: Path, task: EraserTask) -> Path:
    """Where a task's archive is unpacked (a training variant lives in its parent task's archive)."""
    return Path(root) / "eraser" / task.archive


def task_dir(root: Path, task: EraserTask) -> Path:
    """The folder holding the task's train.jsonl, whatever prefix the archive used (`cose` unpacks under
    `data/cose/`); `<archive>/<task>` when nothing is there yet."""
    base = archive_dir(root, task)
    if base.is_dir():
        try:
            return find_task_root(base, name=task.name)
        except DataFormatError:
            pass
    return base / task.name


def documents_path(folder: Path) -> Path:
    """`docs/` or `docs.jsonl` of a task folder (`docs/` when neither exists yet)."""
    single = folder / "docs.jsonl"
    return single if single.is_file() and not (folder / "docs").is_dir() else folder / "docs"


def record_task(root: Path, folder: Path, source: str) -> list[Path]:
    """Manifest entries for a placed task folder: each split file, and docs.jsonl or the docs/ folder (its tree
    digest, with the number of files it held)."""
    manifest = Manifest(root)
    placed = [folder / name for name in SPLIT_FILES.values()]
    for path in placed:
        manifest.record(path, source=source)
    docs = documents_path(folder)
    if docs.is_dir():
        manifest.record(docs, source=source, sha256=tree_digest(docs), files=file_count(docs))
    else:
        manifest.record(docs, source=source)
    return [*placed, docs]


def _tasks_under(folder: Path) -> list[tuple[EraserTask, Path]]:
    """Every ERASER task folder under `folder`: a folder holding train.jsonl, named after a task (the folder
    itself counts under its own name)."""
    found = []
    for here, dirs, files in os.walk(folder):
        dirs.sort()
        if "train.jsonl" in files and Path(here).name in ERASER_TASKS:
            found.append((ERASER_TASKS[Path(here).name], Path(here)))
    return found


class _Eraser(DatasetFamily):
    import_help = ""

    def files(self, spec: DatasetSpec, root: Path) -> dict[str, Path]:
        folder = task_dir(root, task_of(spec))
        return {**{split: folder / name for split, name in SPLIT_FILES.items()}, "docs": documents_path(folder)}

    def how_to_get(self, spec: DatasetSpec) -> str:
        task = task_of(spec)
        digest = ("its size and sha256 are pinned" if task.sha256 and task.name == task.archive else
                  "no digest is published: the first download's sha256 is recorded and later downloads must match")
        url = get_task(task.archive).url
        what = f"{url}, which holds {task.name}" if task.archive != task.name else url
        return (f"Run `ratbench data fetch {spec.name}` (downloads {what}; {digest}), or "
                f"`ratbench data import eraser PATH` with {task.archive}.tar.gz or its extracted folder.")

    def read(self, spec: DatasetSpec, root: Path) -> TextCorpus:
        return read_eraser_corpus(task_dir(root, task_of(spec)), task_of(spec), name=spec.name)

    def fetch(self, spec: DatasetSpec, root: Path, force: bool = False) -> list[Path]:
        root = Path(root)
        task = task_of(spec)
        if self.available(spec, root) and not force:
            return [task_dir(root, task)]
        folder = fetch_eraser_task(task, root, force=True, validate=True)
        record_task(root, folder, task.url)
        for other in ERASER_TASKS.values():  # the archive may hold a training variant too: record it as well
            if other.archive == task.archive and other is not task:
                try:
                    record_task(root, find_task_root(archive_dir(root, task), name=other.name), task.url)
                except DataFormatError:
                    pass  # not in this archive (the variants' presence is unverified)
        return [folder]

    def import_path(self, path: Path, root: Path) -> list[Path]:
        """A downloaded `<task>.tar.gz` (or a zip), or a folder holding one or more task folders named after their
        task (`movies/`, `data/cose/`, ...): every task found is read strictly, then placed under
        `<root>/eraser/<archive>/<task>/`, replacing an earlier copy of that task only."""
        src = Path(path)
        root = Path(root)
        if not src.exists():
            raise RatbenchError(f"{src} does not exist.")
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=root, prefix=".eraser-import-"))
        try:
            base = safe_extract(src, work / "unpacked") if src.is_file() else src
            found = _tasks_under(base)
            if not found:
                names = ", ".join(ERASER_TASKS)
                raise RatbenchError(f"{src}: no ERASER task folder found. Expected a folder named after its task "
                                    f"({names}) holding train.jsonl, val.jsonl, test.jsonl and docs/ or docs.jsonl.")
            for task, folder in found:
                read_eraser_corpus(folder, task)  # strict: a bad record stops the import before anything is placed
            placed: list[Path] = []
            for task, folder in found:
                staged = work / "staged" / task.name
                shutil.copytree(folder, staged)
                final = archive_dir(root, task) / task.name
                place_dir(staged, final)
                for other in _tasks_under(archive_dir(root, task)):  # an earlier copy under another prefix
                    if other[0] is task and other[1] != final:
                        shutil.rmtree(other[1])
                placed += record_task(root, final, f"import:{src.resolve()}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return placed


@register_family
class Eraser(_Eraser):
    name = "eraser"
    import_help = "an ERASER <task>.tar.gz or its extracted folder (movies, multirc, fever, boolq, ...)"


@register_family
class EraserVariants(_Eraser):
    """esnli_flat and cose_simplified: in the esnli and cose archives (imports find every task either way)."""

    name = "eraser-variants"
    import_help = "the ERASER esnli.tar.gz or cose.tar.gz (or their folders) holding esnli_flat / cose_simplified"
