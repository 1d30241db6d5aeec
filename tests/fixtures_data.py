"""Writers of small files in the exact public formats (Lei beer files, R2A hotel TSV/zip, GloVe text)."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

HOTEL_ASPECTS = ["Location", "Service", "Cleanliness"]


def beer_line(scores: list[float], text: str) -> str:
    return " ".join(f"{s:.1f}" for s in scores) + "\t" + text + "\n"


def write_gz(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as fh:
        fh.write(text.encode("utf-8"))
    return path


def write_beer_dir(directory: Path, train: list[str], dev: list[str], annotations: list[dict], gz: bool = True) -> Path:
    """The same train/dev lines for the three aspects (scores decide the labels per aspect)."""
    directory.mkdir(parents=True, exist_ok=True)
    for a in range(3):
        for part, lines in (("train", train), ("heldout", dev)):
            name = f"reviews.aspect{a}.{part}.txt"
            if gz:
                write_gz(directory / f"{name}.gz", "".join(lines))
            else:
                (directory / name).write_text("".join(lines), encoding="utf-8")
    (directory / "annotations.json").write_text("".join(json.dumps(o) + "\n" for o in annotations), encoding="utf-8")
    return directory


def hotel_rows(n_pos: int, n_neg: int, aspect: str, annotated: bool = False) -> str:
    head = "task\tlabel\ttext" + ("\trationale\tatt1\tatt2" if annotated else "") + "\n"
    rows = []
    for i in range(n_pos + n_neg):
        label = 1 if i < n_pos else 0
        toks = f"the room {i} was {'great' if label else 'bad'} .".split()
        row = f"hotel_{aspect}\t{label}\t{' '.join(toks)}"
        if annotated:
            flags = ["0", "0", "0", "1", "1", "0"]
            row += "\t" + " ".join(flags) + "\t" + " ".join("0" for _ in toks) + "\t" + " ".join("0" for _ in toks)
        rows.append(row + "\n")
    return head + "".join(rows)


def write_hotel_tree(base: Path, layout: str = "r2a") -> Path:
    """layout: r2a (data/oracle + data/target) or flat (hotel_X.train|dev + annotations/)."""
    if layout == "r2a":
        oracle, target = base / "data" / "oracle", base / "data" / "target"
    else:
        oracle, target = base, base / "annotations"
    oracle.mkdir(parents=True, exist_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    for a in HOTEL_ASPECTS:
        (oracle / f"hotel_{a}.train").write_text(hotel_rows(6, 4, a), encoding="utf-8")
        (oracle / f"hotel_{a}.dev").write_text(hotel_rows(3, 3, a), encoding="utf-8")
        (target / f"hotel_{a}.train").write_text(hotel_rows(2, 2, a, annotated=True), encoding="utf-8")
    return base


def write_r2a_zip(path: Path, tmp: Path) -> Path:
    tree = write_hotel_tree(tmp / "r2a-src")
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(tree.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(tree).as_posix())
    return path


def write_glove(path: Path, words: list[str], dim: int = 5, header: bool = False) -> Path:
    lines = [f"{len(words)} {dim}\n"] if header else []
    for i, w in enumerate(words):
        lines.append(w + " " + " ".join(f"{(i + 1) * 0.1 + j * 0.01:.4f}" for j in range(dim)) + "\n")
    text = "".join(lines)
    if path.suffix == ".gz":
        write_gz(path, text)
    else:
        path.write_text(text, encoding="utf-8")
    return path
