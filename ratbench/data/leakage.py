"""Duplicate and leakage audit of a text corpus, and leak-free repaired splits.

Two examples are *the same* when their normalised text is equal: tokens joined by one space, every run of
whitespace collapsed to one space, lower-cased (`normalise`). For tasks with a query (ERASER), identity is
query + text: the same passage under two different questions is two examples, the same question over the same
passage is one. Matching is exact after normalisation; near-duplicates (one changed word) are not detected.

The audit compares the splits as ratbench holds them in memory, i.e. after each reader's filters (Beer's
middle score band, empty rationales) and after training-set balancing, not the raw files.

`audit` counts, for every split, the examples that repeat an earlier example of the same split, and for every
ordered pair (dev in train, test in train, test in dev) the examples of the later split whose text also occurs
in the earlier one. Each text is reduced to a SHA-1 digest, so the audit is one pass over each split with dict
look-ups; 20-byte digests keep memory small on 100k+ reviews.

`repair` builds the leak-free variant: test is kept whole; dev loses every example whose text is in test;
train loses every example whose text is in test or dev. With `drop_repeats=True` (the default) dev and train
also keep only the first occurrence of a repeated text; test is never touched, its repeats are only reported.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ratbench.data.corpus import PER_EXAMPLE_FIELDS, TextCorpus, TextSplit

SPLIT_ORDER = ("train", "dev", "test")
# (later, earlier): the share of `later` already contained in `earlier`
PAIRS = (("dev", "train"), ("test", "train"), ("test", "dev"))
NORMALISATION = "tokens joined by one space, whitespace runs collapsed, lower-cased; exact match"
# Repair priority: a split may only keep texts no earlier split in this order holds.
REPAIR_ORDER = ("test", "dev", "train")

# TextSplit fields with one entry per example (sliced together by `repair`), and the metadata fields.

# Drop reasons, in the order they are checked: an example in test *and* dev counts as seen_in_test.
SEEN_IN_TEST = "seen_in_test"
SEEN_IN_DEV = "seen_in_dev"
REPEATED = "repeated_in_split"
REASONS = (SEEN_IN_TEST, SEEN_IN_DEV, REPEATED)
# Query and text are joined by a newline, which normalised text can never contain.
QUERY_SEP = "\n"


def normalise(tokens: Iterable[str]) -> str:
    """Tokens joined by one space, whitespace collapsed, lower-cased.

    Readers already split on whitespace, so joining with one space is the collapse; the extra split also
    covers tokens that themselves contain whitespace or are empty (possible in JSON-sourced token lists).
    """
    return " ".join(" ".join(tokens).split()).lower()


def example_key(tokens: Iterable[str], query: Iterable[str] | None = None) -> str:
    """The identity of one example: the normalised text, preceded by the normalised query when there is one."""
    if query is None:
        return normalise(tokens)
    return normalise(query) + QUERY_SEP + normalise(tokens)


def fingerprint(tokens: Iterable[str], query: Iterable[str] | None = None) -> bytes:
    """SHA-1 digest (20 bytes) of `example_key`."""
    return hashlib.sha1(example_key(tokens, query).encode("utf-8")).digest()


def fingerprints(split: TextSplit) -> list[bytes]:
    """One digest per example, in split order; queries are part of the identity when the split has them."""
    if split.queries is None:
        return [fingerprint(t) for t in split.tokens]
    if len(split.queries) != len(split.tokens):
        raise ValueError(f"split has {len(split.queries)} queries for {len(split.tokens)} examples.")
    return [fingerprint(t, q) for t, q in zip(split.tokens, split.queries)]


@dataclass(frozen=True)
class SplitDuplicates:
    """Repeats inside one split."""

    split: str
    n: int
    n_unique: int  # distinct texts
    duplicates: int  # examples whose text occurred earlier in the same split (= n - n_unique)
    label_conflicts: int  # of those, examples whose label none of the earlier occurrences has
    examples: list[tuple[int, int]] = field(default_factory=list)  # (index, index of the first occurrence)

    @property
    def percent(self) -> float:
        return 100.0 * self.duplicates / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "n_unique": self.n_unique, "duplicates": self.duplicates,
                "percent": round(self.percent, 3), "label_conflicts": self.label_conflicts,
                "examples": [list(e) for e in self.examples]}


@dataclass(frozen=True)
class PairOverlap:
    """Examples of `split` whose text also occurs in `earlier` (e.g. test in train)."""

    split: str  # the later split, whose share is measured
    earlier: str
    n: int  # examples in `split`
    count: int  # examples of `split` whose text is in `earlier` (repeats inside `split` each count)
    distinct: int  # distinct texts among them
    label_conflicts: int  # of `count`, examples whose label the text never has in `earlier`
    examples: list[tuple[int, int]] = field(default_factory=list)  # (index in split, first index in earlier)

    @property
    def key(self) -> str:
        return f"{self.split}_in_{self.earlier}"

    @property
    def percent(self) -> float:
        return 100.0 * self.count / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"split": self.split, "in": self.earlier, "n": self.n, "count": self.count,
                "percent": round(self.percent, 3), "distinct": self.distinct,
                "label_conflicts": self.label_conflicts, "examples": [list(e) for e in self.examples]}


@dataclass(frozen=True)
class LeakageReport:
    """The result of `audit`: repeats per split and overlaps per ordered split pair."""

    corpus: str
    identity: str  # "text" or "query+text"
    splits: dict[str, SplitDuplicates]
    overlaps: dict[str, PairOverlap]  # keyed "dev_in_train", "test_in_train", "test_in_dev"
    test_seen: int  # test examples whose text is in train or dev (what inflates test scores)
    normalisation: str = NORMALISATION

    def overlap(self, split: str, earlier: str) -> PairOverlap:
        return self.overlaps[f"{split}_in_{earlier}"]

    @property
    def clean(self) -> bool:
        """No example is shared between any two splits (repeats inside a split do not count)."""
        return all(o.count == 0 for o in self.overlaps.values())

    @property
    def test_seen_percent(self) -> float:
        n = self.splits["test"].n
        return 100.0 * self.test_seen / n if n else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (plain ints, floats, lists, dicts)."""
        return {
            "corpus": self.corpus,
            "normalisation": self.normalisation,
            "identity": self.identity,
            "clean": self.clean,
            "test_seen": self.test_seen,
            "test_seen_percent": round(self.test_seen_percent, 3),
            "splits": {k: v.to_dict() for k, v in self.splits.items()},
            "overlaps": {k: v.to_dict() for k, v in self.overlaps.items()},
        }

    def summary(self) -> list[str]:
        """Short human-readable lines, cross-split overlaps first."""
        lines = []
        for o in self.overlaps.values():
            line = f"{o.split} in {o.earlier}: {o.count:,} of {o.n:,} {o.split} examples ({o.percent:.1f} %)"
            if o.count:
                line += f", {o.distinct:,} distinct texts"
                if o.label_conflicts:
                    line += f", {o.label_conflicts:,} with a different label"
                line += "; e.g. " + ", ".join(f"{o.split}[{i}] = {o.earlier}[{j}]" for i, j in o.examples[:3])
            lines.append(line)
        for s in self.splits.values():
            line = f"{s.split}: {s.duplicates:,} of {s.n:,} examples repeat an earlier {s.split} example"
            if s.duplicates:
                line += f" ({s.percent:.1f} %)"
                if s.label_conflicts:
                    line += f", {s.label_conflicts:,} with a different label"
            lines.append(line)
        return lines


@dataclass
class _Index:
    """Digest -> (first index, bit set of the labels seen with that text)."""

    first: dict[bytes, int] = field(default_factory=dict)
    labels: dict[bytes, int] = field(default_factory=dict)


def _scan(name: str, digests: Sequence[bytes], labels: Sequence[int], k: int) -> tuple[_Index, SplitDuplicates]:
    index = _Index()
    duplicates = conflicts = 0
    examples: list[tuple[int, int]] = []
    for i, (d, y) in enumerate(zip(digests, labels)):
        bit = 1 << int(y)
        j = index.first.get(d)
        if j is None:
            index.first[d] = i
            index.labels[d] = bit
            continue
        duplicates += 1
        if not index.labels[d] & bit:
            conflicts += 1
        index.labels[d] |= bit
        if len(examples) < k:
            examples.append((i, j))
    n = len(digests)
    return index, SplitDuplicates(name, n, len(index.first), duplicates, conflicts, examples)


def _overlap(name: str, digests: Sequence[bytes], labels: Sequence[int], earlier_name: str, earlier: _Index,
             k: int) -> PairOverlap:
    count = conflicts = 0
    distinct: set[bytes] = set()
    examples: list[tuple[int, int]] = []
    for i, (d, y) in enumerate(zip(digests, labels)):
        j = earlier.first.get(d)
        if j is None:
            continue
        count += 1
        distinct.add(d)
        if not earlier.labels[d] & (1 << int(y)):
            conflicts += 1
        if len(examples) < k:
            examples.append((i, j))
    return PairOverlap(name, earlier_name, len(digests), count, len(distinct), conflicts, examples)


def _identity(corpus: TextCorpus) -> str:
    return "query+text" if any(s.queries is not None for s in corpus.splits().values()) else "text"


def corpus_fingerprints(corpus: TextCorpus) -> dict[str, list[bytes]]:
    """Digests of every split ("train", "dev", "test"). If any split has queries, identity is query + text in
    all of them (a split without queries then counts as having empty ones). Hashing is the costly part of
    `audit` and `repair`; compute this once and pass it to both."""
    with_query = _identity(corpus) == "query+text"
    out = {}
    for name, split in corpus.splits().items():
        if with_query and split.queries is None:
            out[name] = [fingerprint(t, ()) for t in split.tokens]
        else:
            out[name] = fingerprints(split)
    return out


def _checked_digests(corpus: TextCorpus, digests: dict[str, list[bytes]] | None) -> dict[str, list[bytes]]:
    if digests is None:
        return corpus_fingerprints(corpus)
    for name, split in corpus.splits().items():
        if len(digests.get(name, ())) != len(split):
            raise ValueError(f"digests for {name} do not match the split ({len(digests.get(name, ()))} for "
                             f"{len(split)} examples); pass corpus_fingerprints() of this corpus.")
    return digests


def audit(corpus: TextCorpus, k: int = 5, digests: dict[str, list[bytes]] | None = None) -> LeakageReport:
    """Count repeats inside each split and overlaps for dev in train, test in train, test in dev.

    `k` bounds the (index, matching index) examples kept per split and per pair, for messages.
    `digests`: the result of `corpus_fingerprints(corpus)`, if already computed.
    Linear in the corpus size: each example is hashed once and looked up once per pair.
    """
    splits = corpus.splits()
    for name in SPLIT_ORDER:
        _check_lengths(name, splits[name])
    digests = _checked_digests(corpus, digests)
    indexes: dict[str, _Index] = {}
    dups: dict[str, SplitDuplicates] = {}
    for name in SPLIT_ORDER:
        indexes[name], dups[name] = _scan(name, digests[name], splits[name].labels, k)
    overlaps = {}
    for later, earlier in PAIRS:
        o = _overlap(later, digests[later], splits[later].labels, earlier, indexes[earlier], k)
        overlaps[o.key] = o
    seen = sum(1 for d in digests["test"] if d in indexes["train"].first or d in indexes["dev"].first)
    return LeakageReport(corpus.name, _identity(corpus), dups, overlaps, seen)


@dataclass(frozen=True)
class SplitRepair:
    """What `repair` removed from one split."""

    split: str
    n_before: int
    n_after: int
    dropped: dict[str, int]  # reason (seen_in_test, seen_in_dev, repeated_in_split) -> examples dropped
    kept: np.ndarray  # int64 indices into the original split, increasing: new example i = old kept[i]
    classes_before: dict[int, int]  # label -> examples
    classes_after: dict[int, int]

    @property
    def n_dropped(self) -> int:
        return self.n_before - self.n_after

    def to_dict(self) -> dict[str, Any]:
        return {"n_before": self.n_before, "n_after": self.n_after, "n_dropped": self.n_dropped,
                "dropped": dict(self.dropped),
                "classes_before": {str(c): n for c, n in self.classes_before.items()},
                "classes_after": {str(c): n for c, n in self.classes_after.items()}}


@dataclass(frozen=True)
class RepairLog:
    """The result of `repair`, per split (test always drops nothing)."""

    corpus: str
    drop_repeats: bool
    splits: dict[str, SplitRepair]

    @property
    def total_dropped(self) -> int:
        return sum(s.n_dropped for s in self.splits.values())

    def to_dict(self) -> dict[str, Any]:
        return {"corpus": self.corpus, "normalisation": NORMALISATION, "policy": _policy(self.drop_repeats),
                "drop_repeats": self.drop_repeats, "total_dropped": self.total_dropped,
                "splits": {k: v.to_dict() for k, v in self.splits.items()}}

    def summary(self) -> list[str]:
        lines = []
        for name in REPAIR_ORDER:
            s = self.splits[name]
            why = ", ".join(f"{n:,} {r.replace('_', ' ')}" for r, n in s.dropped.items() if n)
            line = f"{name}: kept {s.n_after:,} of {s.n_before:,}" + (f" (dropped {why})" if why else "")
            if s.n_dropped and len(s.classes_before) > 1 and len(set(s.classes_before.values())) == 1 \
                    and len(set(s.classes_after.values())) > 1:
                # a balanced training set that repair unbalanced: worth saying, re-balancing is the caller's call
                line += "; no longer class-balanced: " + ", ".join(
                    f"class {c}: {n:,}" for c, n in sorted(s.classes_after.items()))
            lines.append(line)
        return lines


def _policy(drop_repeats: bool) -> str:
    text = "test kept whole; dev drops texts in test; train drops texts in test or dev"
    return text + ("; dev and train keep the first occurrence of a repeated text" if drop_repeats else "")


def _check_lengths(name: str, split: TextSplit) -> None:
    n = len(split.labels)
    for f in PER_EXAMPLE_FIELDS:
        value = getattr(split, f, None)
        if value is not None and len(value) != n:
            raise ValueError(f"{name} split: {f} has {len(value)} entries for {n} labels.")


def _classes(labels: Iterable[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for y in labels:
        out[int(y)] = out.get(int(y), 0) + 1
    return dict(sorted(out.items()))


def subset_split(split: TextSplit, keep: Sequence[int] | np.ndarray, counts: dict[str, int] | None = None
                 ) -> TextSplit:
    """`split.subset(keep, counts)` (kept under this name for callers of the audit)."""
    return split.subset(keep, counts)


def repair(corpus: TextCorpus, drop_repeats: bool = True, digests: dict[str, list[bytes]] | None = None
           ) -> tuple[TextCorpus, RepairLog]:
    """The leak-free variant of `corpus`.

    Splits are walked in the order test, dev, train, and each keeps only texts no earlier split holds:
    - test is returned as it is (the same object): it carries the gold rationales, so it never gives rows
      up, and its internal repeats are only reported by `audit`;
    - dev drops every example whose text is in test;
    - train drops every example whose text is in test or dev.
    With `drop_repeats` (default) dev and train also keep only the first occurrence of each text, so the
    repaired dev and train have no repeats either. A dropped example is counted under the first reason that
    applies, in the order seen_in_test, seen_in_dev, repeated_in_split.

    Every per-example field (tokens, labels, gold, queries, spans, documents, ids) is sliced with the same
    indices, and the split's `counts` gains `dropped_seen_in_test`, `dropped_seen_in_dev` (train only),
    `dropped_repeated_in_split` (when `drop_repeats`) and `repaired_from` (size before repair). Other corpus
    attributes (name, files, label_names) are kept. Repair does not re-balance: a balanced training set can
    come out unbalanced, which `RepairLog.summary` says. `digests`: as for `audit`.
    """
    splits = corpus.splits()
    for name in SPLIT_ORDER:
        _check_lengths(name, splits[name])
    digests = _checked_digests(corpus, digests)
    claimed: dict[str, set[bytes]] = {"test": set(digests["test"])}
    new: dict[str, TextSplit] = {"test": corpus.test}
    n_test = len(corpus.test)
    log: dict[str, SplitRepair] = {"test": SplitRepair(
        "test", n_test, n_test, {}, np.arange(n_test, dtype=np.int64),
        _classes(corpus.test.labels), _classes(corpus.test.labels))}
    for name in ("dev", "train"):
        earlier = [(SEEN_IN_TEST, claimed["test"])] + ([(SEEN_IN_DEV, claimed["dev"])] if name == "train" else [])
        dropped = dict.fromkeys([r for r, _ in earlier] + ([REPEATED] if drop_repeats else []), 0)
        own: set[bytes] = set()
        keep: list[int] = []
        for i, d in enumerate(digests[name]):
            reason = next((r for r, held in earlier if d in held), None)
            if reason is None and drop_repeats and d in own:
                reason = REPEATED
            if reason is not None:
                dropped[reason] += 1
                continue
            own.add(d)
            keep.append(i)
        # the texts this split still holds (repeats included when they were kept)
        claimed[name] = own
        split = splits[name]
        counts = {f"dropped_{r}": n for r, n in dropped.items()}
        counts["repaired_from"] = len(split)
        new[name] = subset_split(split, keep, counts)
        log[name] = SplitRepair(name, len(split), len(keep), dropped, np.asarray(keep, dtype=np.int64),
                                _classes(split.labels), _classes(new[name].labels))
    repaired = dataclasses.replace(corpus, train=new["train"], dev=new["dev"], test=new["test"])
    return repaired, RepairLog(corpus.name, drop_repeats, {k: log[k] for k in REPAIR_ORDER})
