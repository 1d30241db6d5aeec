"""Small ERASER tasks written in the exact published layout, and the archives that carry them.

Layout: `<prefix><task>/{train,val,test}.jsonl` plus `docs/<docid>` (one sentence per line, tokens separated by
single spaces) or one `docs.jsonl` of `{"docid", "document"}`. All records are invented. The token positions
noted next to each document are the ones the tests check against.
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

QUERY_MOVIES = "What is the sentiment of this review?"


def ev(docid: str, start: int, end: int, text: str, s0: int = 0, s1: int = 1) -> dict[str, Any]:
    return {"docid": docid, "end_sentence": s1, "end_token": end, "start_sentence": s0, "start_token": start,
            "text": text}


def rec(aid: str, label: str, groups: list[list[dict]], query: str | None, docids: list[str] | None | str = "absent"
        ) -> dict[str, Any]:
    out: dict[str, Any] = {"annotation_id": aid, "classification": label}
    if docids != "absent":
        out["docids"] = docids
    out["evidences"] = groups
    if query is not None:
        out["query"] = query
    out["query_type"] = None
    return out


# Movies: docs/, no `docids` key, the constant query, overlapping and adjacent phrase evidence, one review
# without evidence.
# negR_000.txt flattens to: the(0) film(1) is(2) bad(3) .(4) really(5) ,(6) truly(7) bad(8) !(9)
MOVIES_DOCS = {
    "negR_000.txt": "the film  is bad .\n\n really , truly bad !\n",  # double space, blank line, leading space
    "posR_001.txt": "a fine , fine movie .\n",  # a(0) fine(1) ,(2) fine(3) movie(4) .(5)
}
MOVIES_NEG = rec("negR_000.txt", "NEG", [[ev("negR_000.txt", 2, 4, "is bad")], [ev("negR_000.txt", 3, 5, "bad .")],
                                         [ev("negR_000.txt", 7, 9, "truly bad", 1, 2)],
                                         [ev("negR_000.txt", 9, 10, "!", 1, 2)]], QUERY_MOVIES)
MOVIES_POS = rec("posR_001.txt", "POS", [], QUERY_MOVIES)
MOVIES = {"train": [MOVIES_NEG, MOVIES_POS], "val": [MOVIES_POS], "test": [MOVIES_NEG]}

# MultiRC: docs/, docids null, query "question || answer"; the document is the annotation_id before ':'.
# story-1.txt: Mia(0) left(1) the(2) house(3) at(4) dawn(5) .(6) She(7) packed(8) two(9) apples(10) and(11)
#              a(12) map(13) .(14)
MULTIRC_DOCS = {"story-1.txt": "Mia left the house at dawn .\nShe packed two apples and a map .\n"}
MULTIRC_TRUE = rec("story-1.txt:0:0", "True", [[ev("story-1.txt", 7, 15, "She packed two apples and a map .", 1, 2)]],
                   "What did Mia pack ? || apples and a map", None)
MULTIRC_FALSE = rec("story-1.txt:0:1", "False", [[ev("story-1.txt", 0, 7, "Mia left the house at dawn ."),
                                                  ev("story-1.txt", 7, 15, "She packed two apples and a map .", 1, 2)]],
                    "What did Mia pack ? || a hat", None)
MULTIRC = {"train": [MULTIRC_TRUE, MULTIRC_FALSE], "val": [MULTIRC_FALSE], "test": [MULTIRC_TRUE]}

# FEVER: docs.jsonl variant, listed docids, an example over two documents.
# Example_Town: Example(0) Town(1) is(2) a(3) village(4) in(5) the(6) north(7) .(8) It(9) has(10) a(11)
#               church(12) .(13);  North_Region: The(0) north(1) is(2) cold(3) .(4)
FEVER_DOCS = {"Example_Town": "Example Town is a village in the north .\nIt has a church .",
              "North_Region": "The north is cold ."}
FEVER_ONE = rec("900001", "SUPPORTS", [[ev("Example_Town", 0, 9, "Example Town is a village in the north .")]],
                "Example Town is in the north .", ["Example_Town"])
FEVER_TWO = rec("900002", "REFUTES", [[ev("Example_Town", 9, 14, "It has a church .", 1, 2)],
                                      [ev("North_Region", 0, 5, "The north is cold .")]],
                "Example Town has no church .", ["Example_Town", "North_Region"])
FEVER = {"train": [FEVER_ONE, FEVER_TWO], "val": [FEVER_TWO], "test": [FEVER_ONE]}

# e-SNLI: docs.jsonl, docids null, premise and hypothesis as two documents per example.
# p1_premise: A(0) man(1) plays(2) a(3) guitar(4) on(5) stage(6) .(7);  p1_hypothesis: A man is playing music .
ESNLI_DOCS = {"p1_premise": "A man plays a guitar on stage .", "p1_hypothesis": "A man is playing music .",
              "p2_premise": "Two dogs run .", "p2_hypothesis": "The dogs sleep .",
              "p3_premise": "A child reads .", "p3_hypothesis": "A child reads a book ."}
ESNLI_QUERY = "What is the relationship between the premise and the hypothesis ?"
ESNLI_ENT = rec("p1", "entailment", [[ev("p1_premise", 2, 5, "plays a guitar"), ev("p1_hypothesis", 3, 5,
                                                                                     "playing music")]],
                ESNLI_QUERY, None)
ESNLI_CON = rec("p2", "contradiction", [[ev("p2_hypothesis", 2, 3, "sleep")]], ESNLI_QUERY, None)
ESNLI_NEU = rec("p3", "neutral", [], ESNLI_QUERY, None)
ESNLI = {"train": [ESNLI_ENT, ESNLI_CON, ESNLI_NEU], "val": [ESNLI_CON], "test": [ESNLI_ENT]}

# CoS-E: docs.jsonl keyed by annotation_id (the question), answer choices in the query, letter labels; the
# archive unpacks under data/cose/ and also carries the data/cose_simplified/ training variant.
# q1: Where(0) would(1) you(2) borrow(3) a(4) book(5) ?(6)
COSE_DOCS = {"q1": "Where would you borrow a book ?"}
COSE_Q1 = rec("q1", "B", [[ev("q1", 3, 6, "borrow a book")]], "bank [sep] library [sep] park [sep] school [sep] shop",
              None)
COSE = {"train": [COSE_Q1], "val": [COSE_Q1], "test": [COSE_Q1]}
COSE_SIMPLIFIED_DOCS = {"q1_library": "Where would you borrow a book ?"}
COSE_SIMPLIFIED = {s: [rec("q1_library", "true", [[ev("q1_library", 3, 6, "borrow a book")]], "library", None)]
                   for s in ("train", "val", "test")}

TASKS: dict[str, tuple[dict[str, list[dict]], dict[str, str], str]] = {
    "movies": (MOVIES, MOVIES_DOCS, "docs"),
    "multirc": (MULTIRC, MULTIRC_DOCS, "docs"),
    "fever": (FEVER, FEVER_DOCS, "docs.jsonl"),
    "esnli": (ESNLI, ESNLI_DOCS, "docs.jsonl"),
    "cose": (COSE, COSE_DOCS, "docs.jsonl"),
    "cose_simplified": (COSE_SIMPLIFIED, COSE_SIMPLIFIED_DOCS, "docs.jsonl"),
}


def jsonl(objs: list[dict]) -> str:
    return "".join(json.dumps(o, sort_keys=True) + "\n" for o in objs)


def write_task_dir(directory: Path, splits: dict[str, list[dict]], docs: dict[str, str], layout: str = "docs"
                   ) -> Path:
    """`directory/{train,val,test}.jsonl` and the documents as `docs/<docid>` or `docs.jsonl`."""
    directory.mkdir(parents=True, exist_ok=True)
    for split, records in splits.items():
        (directory / f"{split}.jsonl").write_text(jsonl(records), encoding="utf-8")
    if layout == "docs":
        (directory / "docs").mkdir(exist_ok=True)
        for docid, text in docs.items():
            (directory / "docs" / docid).write_text(text, encoding="utf-8")
    else:
        (directory / "docs.jsonl").write_text(jsonl([{"docid": d, "document": t} for d, t in docs.items()]),
                                              encoding="utf-8")
    return directory


def write_task(base: Path, task: str, layout: str | None = None) -> Path:
    splits, docs, default = TASKS[task]
    return write_task_dir(base / task, splits, docs, layout or default)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1_600_000_000
    tar.addfile(info, io.BytesIO(data))


def tar_tree(path: Path, tree: Path, prefix: str = "") -> Path:
    """A .tar.gz of every file under `tree`, named `<prefix><relative path>` (the published archives hold
    `<task>/...`; cose holds `data/cose/...`)."""
    with tarfile.open(path, "w:gz") as tar:
        for f in sorted(tree.rglob("*")):
            if f.is_file():
                _add_bytes(tar, prefix + f.relative_to(tree).as_posix(), f.read_bytes())
    return path


def task_archive(path: Path, tmp: Path, task: str, layout: str | None = None) -> Path:
    """`<task>.tar.gz` as published: members `<task>/...`, except cose: `data/cose/...` and
    `data/cose_simplified/...`."""
    src = tmp / f"src-{task}-{layout or 'default'}"
    if task == "cose":
        write_task(src, "cose")
        write_task(src, "cose_simplified")
        return tar_tree(path, src, "data/")
    write_task(src, task, layout)
    return tar_tree(path, src)


def traversal_tar(path: Path, task: str = "fever") -> Path:
    """A valid-looking task archive with one extra member named `../escaped.txt`."""
    with tarfile.open(path, "w:gz") as tar:
        _add_bytes(tar, f"{task}/train.jsonl", jsonl(FEVER["train"]).encode())
        _add_bytes(tar, "../escaped.txt", b"outside\n")
    return path


def symlink_tar(path: Path, target: str = "../../outside", task: str = "fever") -> Path:
    """A task archive with a symlink member pointing out of the target, then a file written through it."""
    with tarfile.open(path, "w:gz") as tar:
        _add_bytes(tar, f"{task}/train.jsonl", jsonl(FEVER["train"]).encode())
        link = tarfile.TarInfo(f"{task}/docs")
        link.type = tarfile.SYMTYPE
        link.linkname = target
        tar.addfile(link)
        _add_bytes(tar, f"{task}/docs/Example_Town", b"Example Town .\n")
    return path


def traversal_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fever/train.jsonl", jsonl(FEVER["train"]))
        zf.writestr("../escaped.txt", "outside\n")
    return path


# --- a trainable Movies-format task ------------------------------------------------------------------------------
# Reviews of filler words over several lines with planted sentiment phrases; each phrase is one evidence group
# (phrase-level, like Movies). Some reviews carry two touching phrases (adjacent evidence spans, scored as two
# spans by ERASER's scorer, one run of a mask), and one test review has no evidence at all.
POS_WORDS = ["great", "superb", "lovely", "moving", "brilliant"]
NEG_WORDS = ["awful", "dull", "boring", "clumsy", "tedious"]
FILLER_WORDS = [f"f{i}" for i in range(30)] + ["the", "a", "film", ",", "."]


def movies_task(n_train: int = 160, n_val: int = 40, n_test: int = 40, seed: int = 0
                ) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """(split -> records, docid -> document) in Movies' layout: no `docids`, the constant query, docs/."""
    import numpy as np

    rng = np.random.default_rng(seed)
    splits: dict[str, list[dict]] = {}
    docs: dict[str, str] = {}
    counter = 0
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        records = []
        for k in range(n):
            label = int(k % 2)
            words = POS_WORDS if label else NEG_WORDS
            lines = [[str(w) for w in rng.choice(FILLER_WORDS, int(rng.integers(6, 12)))] for _ in range(4)]
            docid = f"{'posR' if label else 'negR'}_{counter:04d}.txt"
            counter += 1
            phrases = []
            for line_no in sorted(rng.choice(4, 2 if k % 5 == 0 else 1, replace=False).tolist()):
                length = int(rng.integers(2, 4))
                phrase = [str(w) for w in rng.choice(words, length)]
                at = int(rng.integers(0, len(lines[line_no])))
                if k % 7 == 3:  # two touching phrases: adjacent evidence spans
                    phrase2 = [str(w) for w in rng.choice(words, 2)]
                    lines[line_no][at:at] = phrase + phrase2
                    phrases.append((line_no, at, len(phrase)))
                    phrases.append((line_no, at + len(phrase), 2))
                else:
                    lines[line_no][at:at] = phrase
                    phrases.append((line_no, at, length))
            starts = np.cumsum([0] + [len(line) for line in lines])
            flat = [w for line in lines for w in line]
            groups = []
            for line_no, at, length in phrases:
                s = int(starts[line_no] + at)
                groups.append([ev(docid, s, s + length, " ".join(flat[s:s + length]), line_no, line_no + 1)])
            if split == "test" and k == 1:
                groups = []  # a review without evidence: classification only
            docs[docid] = "\n".join(" ".join(line) for line in lines) + "\n"
            records.append(rec(docid, "POS" if label else "NEG", groups, QUERY_MOVIES))
        splits[split] = records
    return splits, docs


def write_vectors(path: Path, words: list[str], dim: int = 16, seed: int = 0) -> Path:
    """A GloVe-format text file with seeded random vectors (no header)."""
    import numpy as np

    vectors = np.random.default_rng(seed).normal(0, 1, (len(words), dim))
    path.write_text("".join(w + " " + " ".join(f"{v:.5f}" for v in row) + "\n" for w, row in zip(words, vectors)),
                    encoding="utf-8")
    return path


MOVIES_WORDS = POS_WORDS + NEG_WORDS + FILLER_WORDS


# --- a trainable e-SNLI-format task (three classes, two documents per example, a query, docs.jsonl) -------------
ESNLI_CLASS_WORDS = {"entailment": ["indeed", "surely"], "neutral": ["maybe", "perhaps"],
                     "contradiction": ["never", "not"]}


def esnli_task(n_train: int = 150, n_val: int = 30, n_test: int = 30, seed: int = 0
               ) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """Premise of filler words, hypothesis with one class word (the evidence, on the hypothesis); e-SNLI's layout:
    docids null, documents `<id>_premise` / `<id>_hypothesis` in docs.jsonl, the constant query."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = list(ESNLI_CLASS_WORDS)
    splits: dict[str, list[dict]] = {}
    docs: dict[str, str] = {}
    counter = 0
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        records = []
        for k in range(n):
            label = labels[k % 3]
            aid = f"e{counter:04d}"
            counter += 1
            premise = [str(w) for w in rng.choice(FILLER_WORDS, int(rng.integers(5, 9)))]
            hypothesis = [str(w) for w in rng.choice(FILLER_WORDS, int(rng.integers(3, 6)))]
            at = int(rng.integers(0, len(hypothesis)))
            hypothesis.insert(at, str(rng.choice(ESNLI_CLASS_WORDS[label])))
            docs[f"{aid}_premise"] = " ".join(premise)
            docs[f"{aid}_hypothesis"] = " ".join(hypothesis)
            groups = [[ev(f"{aid}_hypothesis", at, at + 1, hypothesis[at])]]
            records.append(rec(aid, label, groups, ESNLI_QUERY, None))
        splits[split] = records
    return splits, docs


ESNLI_WORDS = [w for ws in ESNLI_CLASS_WORDS.values() for w in ws] + FILLER_WORDS + ESNLI_QUERY.lower().split()
