"""The in-memory corpus every method trains on, and the shared text -> tensor rules (docs/datasets.md#common-rules).

Parsers produce `TextSplit`s (label rule applied, full token lists); `build_split` then truncates and
maps tokens to embedding rows. Token ids are stored flat with offsets so that no split is padded to
256 in memory; batches are padded only to their own longest example.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ratbench.data.evidence import Evidence, evidence_of

BALANCE_SEED = 20226666
MAX_LEN = 256


@dataclass
class TextSplit:
    """One split as read from its files: whitespace tokens, 0/1 labels, gold masks for the test split."""

    tokens: list[list[str]]  # the selectable text (several documents: concatenated, see `documents`)
    labels: list[int]  # class index into TextCorpus.label_names
    gold: list[np.ndarray] | None = None  # uint8 per token, len == len(tokens[i])
    source: str = ""
    counts: dict[str, int] = field(default_factory=dict)  # e.g. dropped_middle_band, skipped_empty_rationale
    # Optional, for tasks that have them (ERASER):
    queries: list[list[str]] | None = None  # model input that is never selectable nor counted in sparsity
    spans: list[list[tuple[int, int]]] | None = None  # gold evidence spans [start, end) as given, on `tokens`
    documents: list[list[tuple[str, int, int]]] | None = None  # (docid, start, end) of each document in `tokens`
    ids: list[str] | None = None  # example ids (ERASER annotation_id), for exports

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, keep: Sequence[int] | np.ndarray, counts: dict[str, int] | None = None) -> TextSplit:
        """Examples `keep` (in that order) of every per-example field, with `counts` added to a copy of the
        split's counts; gold arrays are shared, not copied. A field this method does not know is an error, so a
        new per-example field can never silently fall out of alignment."""
        unknown = [f.name for f in dataclasses.fields(self)
                   if f.name not in PER_EXAMPLE_FIELDS + METADATA_FIELDS and getattr(self, f.name) is not None]
        if unknown:
            raise TypeError(f"TextSplit field(s) {unknown} are neither per-example nor metadata fields; add them to "
                            "ratbench.data.corpus.PER_EXAMPLE_FIELDS or METADATA_FIELDS.")
        idx = [int(i) for i in keep]
        changes: dict[str, Any] = {f: [getattr(self, f)[i] for i in idx] for f in PER_EXAMPLE_FIELDS
                                   if getattr(self, f) is not None}
        return dataclasses.replace(self, **changes, counts={**self.counts, **(counts or {})})


# TextSplit fields with one entry per example (sliced together), and the metadata fields
PER_EXAMPLE_FIELDS = ("tokens", "labels", "gold", "queries", "spans", "documents", "ids")
METADATA_FIELDS = ("source", "counts")


@dataclass
class TextCorpus:
    name: str
    train: TextSplit
    dev: TextSplit
    test: TextSplit
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256
    label_names: list[str] = field(default_factory=lambda: ["0", "1"])  # class index -> label as in the files

    def splits(self) -> dict[str, TextSplit]:
        return {"train": self.train, "dev": self.dev, "test": self.test}


def binarize(score: float, neg_threshold: float = 0.4, pos_threshold: float = 0.6) -> int | None:
    """Beer label rule: s <= 0.4 -> 0, s >= 0.6 -> 1, the middle band is dropped (None)."""
    if score <= neg_threshold:
        return 0
    if score >= pos_threshold:
        return 1
    return None


def balance(split: TextSplit, seed: int = BALANCE_SEED) -> TextSplit:
    """Down-sample the majority class as the reference loaders do.

    A private `random.Random(seed)` replaces the reference's reset of the global RNG (docs/methods.md#quirks (Q8)) but
    draws the same sample: positives and negatives in file order, `sample(majority, minority_count)`, and the
    result is all positives followed by all negatives.
    """
    pos = [i for i, y in enumerate(split.labels) if y == 1]
    neg = [i for i, y in enumerate(split.labels) if y == 0]
    rng = random.Random(seed)
    if len(pos) > len(neg):
        pos = rng.sample(pos, len(neg))
    elif len(neg) > len(pos):
        neg = rng.sample(neg, len(pos))
    return split.subset(pos + neg, {"balanced_from": len(split.labels)})


POSITION_FIELDS = ("gold", "forced", "token_type", "word_index")


@dataclass
class Split:
    """Token ids of one split, flat; example i is ids[offsets[i]:offsets[i+1]] (already truncated).

    Optional per-position arrays (aligned with `ids`): `gold`; and for sub-word pieces or query tasks `forced`
    (1 at positions the predictor always reads and that are never selectable: [CLS], [SEP], a query),
    `token_type` (segment ids) and `word_index` (the word each piece belongs to within its example, -1 for
    forced positions). Word-level gold (`word_gold`, flat per word with `word_offsets`) lets metrics be
    reported per word when the ids are sub-word pieces (data/pieces.py).
    """

    ids: np.ndarray  # int64, all examples concatenated
    offsets: np.ndarray  # int64, n + 1
    labels: np.ndarray  # int64
    gold: np.ndarray | None = None  # uint8, aligned with ids (test split only)
    forced: np.ndarray | None = None  # uint8, aligned with ids
    token_type: np.ndarray | None = None  # int8, aligned with ids
    word_index: np.ndarray | None = None  # int32, aligned with ids
    word_offsets: np.ndarray | None = None  # int64, n + 1, into word_gold
    word_gold: np.ndarray | None = None  # uint8, one per word
    # gold evidence spans as given and each example's documents (ERASER tasks; data/evidence.py); also tells which
    # examples have gold at all (rationale metrics skip the others)
    evidence: Evidence | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def word_lengths(self) -> np.ndarray | None:
        return None if self.word_offsets is None else np.diff(self.word_offsets)

    def example(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def subset(self, index: np.ndarray) -> Split:
        """A new split with the given examples (used by tests and sub-sampled probes)."""
        def gather(values: np.ndarray, offsets: np.ndarray, dtype: type) -> tuple[np.ndarray, np.ndarray]:
            pieces = [values[offsets[i] : offsets[i + 1]] for i in index]
            lengths = np.diff(offsets)[index]
            return (np.concatenate(pieces) if pieces else np.zeros(0, dtype),
                    np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))

        ids, offsets = gather(self.ids, self.offsets, np.int64)
        arrays = {f: gather(getattr(self, f), self.offsets, getattr(self, f).dtype.type)[0]
                  for f in POSITION_FIELDS if getattr(self, f) is not None}
        if self.word_offsets is not None:
            words = self.word_gold if self.word_gold is not None else np.zeros(int(self.word_offsets[-1]), np.uint8)
            kept, arrays["word_offsets"] = gather(words, self.word_offsets, np.uint8)
            if self.word_gold is not None:
                arrays["word_gold"] = kept
        if self.evidence is not None:
            arrays["evidence"] = self.evidence.subset(index)
        return Split(ids, offsets, self.labels[index].copy(), **arrays)


@dataclass
class Corpus:
    """Everything a GRU method needs: three splits, the restricted embedding matrix, provenance."""

    name: str
    train: Split
    dev: Split
    test: Split
    words: list[str]  # row -> word; row 0 is "" (padding and unknown share it, docs/datasets.md#word-vectors)
    vectors: np.ndarray  # float32 (len(words), dim); row 0 all zero
    files: dict[str, str] = field(default_factory=dict)
    vectors_name: str = ""  # the vector resource the rows come from (docs/datasets.md#word-vectors)
    label_names: list[str] = field(default_factory=lambda: ["0", "1"])
    splits: str = "published"  # or "repaired" (docs/leakage.md)
    leakage: dict[str, Any] = field(default_factory=dict)  # the splits' overlap audit (prepare.leakage_facts)
    encoder: str = ""  # transformer backbone: the encoder whose tokenizer made the pieces (data/pieces.py)
    pieces: dict[str, Any] = field(default_factory=dict)  # per split: what tokenisation and truncation did

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def build_split(text: TextSplit, word2idx: dict[str, int], max_len: int = MAX_LEN) -> Split:
    """Truncate to max_len and map tokens to rows (unknown -> 0, still a real token).

    A split with queries (ERASER) becomes `query SEP document` per example (`build_query_split`); a split with
    evidence spans carries them (`Split.evidence`)."""
    if text.queries is not None:
        return build_query_split(text, word2idx, max_len)
    lengths = np.fromiter((min(len(t), max_len) for t in text.tokens), np.int64, len(text.tokens))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    get = word2idx.get
    ids = np.fromiter(
        (get(w, 0) for toks in text.tokens for w in toks[:max_len]), np.int64, int(offsets[-1])
    )
    gold = None
    if text.gold is not None:
        gold = (
            np.concatenate([g[:max_len].astype(np.uint8) for g in text.gold])
            if text.gold
            else np.zeros(0, np.uint8)
        )
    return Split(ids, offsets, np.asarray(text.labels, np.int64), gold, evidence=split_evidence(text))


QUERY_SEP_ID = 0  # the row between query and document: the zero vector (no word of its own, frozen vectors)


def build_query_split(text: TextSplit, word2idx: dict[str, int], max_len: int = MAX_LEN) -> Split:
    """Per example `query SEP document[:max_len]` as word ids, `forced` = 1 on the query and the separator (the
    predictor always reads them, they are never selectable and outside every sparsity denominator), gold 0 there.
    The query is kept whole; only the document is cut to `max_len`. Selectable positions, in order, are the
    document's words, as in a split without queries."""
    if text.queries is None or len(text.queries) != len(text.tokens):
        raise ValueError("build_query_split needs one query per example")
    get = word2idx.get
    q_len = np.fromiter((len(q) + 1 for q in text.queries), np.int64, len(text.queries))
    d_len = np.fromiter((min(len(t), max_len) for t in text.tokens), np.int64, len(text.tokens))
    lengths = q_len + d_len
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    total = int(offsets[-1])
    ids = np.fromiter((i for q, toks in zip(text.queries, text.tokens)
                       for i in (*(get(w, 0) for w in q), QUERY_SEP_ID, *(get(w, 0) for w in toks[:max_len]))),
                      np.int64, total)
    # position within its example < the query part's length -> forced
    within = np.arange(total, dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    forced = (within < np.repeat(q_len, lengths)).astype(np.uint8)
    gold = None
    if text.gold is not None:
        gold = np.zeros(total, np.uint8)
        if text.gold:
            gold[forced == 0] = np.concatenate([g[:max_len].astype(np.uint8) for g in text.gold])
    return Split(ids, offsets, np.asarray(text.labels, np.int64), gold, forced=forced,
                 evidence=split_evidence(text))


def with_evidence(corpus: Corpus, text: TextCorpus) -> Corpus:
    """`corpus` with the evaluation splits' evidence from the text they were built from (for corpora built
    elsewhere, e.g. the sub-word pieces of data/pieces.py); training never reads gold, so train gets none. A
    corpus whose text has no evidence spans is returned unchanged."""
    for part in ("dev", "test"):
        evidence = split_evidence(getattr(text, part))
        if evidence is not None:
            setattr(corpus, part, dataclasses.replace(getattr(corpus, part), evidence=evidence))
    return corpus


def split_evidence(text: TextSplit) -> Evidence | None:
    """The split's evidence spans and documents (data/evidence.py), when its reader gives spans."""
    if text.spans is None:
        return None
    return evidence_of(text.spans, text.documents, [len(t) for t in text.tokens])


def corpus_words(text: TextCorpus, max_len: int = MAX_LEN) -> set[str]:
    """The token types that survive truncation in any split (the rows the embedding matrix needs), queries
    included."""
    words: set[str] = set()
    for split in text.splits().values():
        for toks in split.tokens:
            words.update(toks[:max_len])
        for query in split.queries or ():
            words.update(query)
    return words
