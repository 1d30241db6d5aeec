"""Gold evidence as given, per example, stored flat beside a split (ERASER tasks).

A token mask cannot say where one evidence span ends and the next begins, nor which document of an example a
token belongs to; ERASER's scorer needs both (spans are scored as given, one scored instance per (example,
document)). `Evidence` keeps, for every example of a split:
- `example`: its index in the split as read (so a subset can still name the example's annotation_id);
- `has_gold`: 1 if it has at least one evidence span (rationale metrics skip the others, classification
  metrics do not);
- its documents' `[doc_start, doc_end)` in the example's selectable words (the concatenated documents, full
  length, before any truncation), via `doc_offsets`;
- its evidence spans `span_start`/`span_end` local to document `span_doc`, via `span_offsets`.
Everything is numpy; `subset` and `to_arrays`/`from_arrays` (the corpus caches) are vectorised. Nothing here
imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ExampleEvidence:
    """One example's evidence, as a batch carries it (an object array of these: row-indexable like any per-example
    array, so code that slices or repeats a batch's rows keeps them aligned)."""

    example: int  # index in the split as read
    has_gold: bool
    documents: tuple[tuple[int, int], ...]  # [start, end) of each document in the example's selectable words
    spans: tuple[tuple[int, int, int], ...]  # (document, start, end), document-local, as given

    @property
    def words(self) -> int:
        """Selectable words before truncation (its documents' tokens together)."""
        return self.documents[-1][1] if self.documents else 0


FIELDS = ("example", "has_gold", "doc_offsets", "doc_start", "doc_end", "span_offsets", "span_doc", "span_start",
          "span_end")


def _gather(offsets: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions of the ragged rows `index` in their flat arrays, the new offsets)."""
    starts = offsets[index]
    lengths = offsets[index + 1] - starts
    new = np.zeros(len(index) + 1, np.int64)
    np.cumsum(lengths, out=new[1:])
    total = int(new[-1])
    within = np.arange(total, dtype=np.int64) - np.repeat(new[:-1], lengths)
    return np.repeat(starts, lengths) + within, new


@dataclass
class Evidence:
    example: np.ndarray  # int64 (n,)
    has_gold: np.ndarray  # uint8 (n,)
    doc_offsets: np.ndarray  # int64 (n + 1,) into doc_start / doc_end
    doc_start: np.ndarray  # int64 (n_docs,)
    doc_end: np.ndarray  # int64 (n_docs,)
    span_offsets: np.ndarray  # int64 (n + 1,) into the span arrays
    span_doc: np.ndarray  # int64 (n_spans,): the document (0-based, within its example) the span is on
    span_start: np.ndarray  # int64 (n_spans,), document-local, start inclusive
    span_end: np.ndarray  # int64 (n_spans,), document-local, end exclusive

    def __len__(self) -> int:
        return len(self.example)

    def subset(self, index: Sequence[int] | np.ndarray) -> Evidence:
        index = np.asarray(index, np.int64)
        docs, doc_offsets = _gather(self.doc_offsets, index)
        spans, span_offsets = _gather(self.span_offsets, index)
        return Evidence(self.example[index], self.has_gold[index], doc_offsets, self.doc_start[docs],
                        self.doc_end[docs], span_offsets, self.span_doc[spans], self.span_start[spans],
                        self.span_end[spans])

    def words(self, i: int) -> int:
        """Selectable words of example i before truncation (its documents' tokens together)."""
        end = self.doc_offsets[i + 1]
        return int(self.doc_end[end - 1]) if end > self.doc_offsets[i] else 0

    def documents(self, i: int) -> list[tuple[int, int]]:
        """[start, end) of each document of example i in its selectable words."""
        a, b = self.doc_offsets[i], self.doc_offsets[i + 1]
        return list(zip(self.doc_start[a:b].tolist(), self.doc_end[a:b].tolist()))

    def spans(self, i: int) -> list[tuple[int, int, int]]:
        """(document, start, end) of each evidence span of example i, document-local, as given."""
        a, b = self.span_offsets[i], self.span_offsets[i + 1]
        return list(zip(self.span_doc[a:b].tolist(), self.span_start[a:b].tolist(), self.span_end[a:b].tolist()))

    def examples(self, index: Sequence[int] | np.ndarray) -> np.ndarray:
        """Examples `index` as an object array of `ExampleEvidence` (what `Batch.evidence` holds)."""
        out = np.empty(len(index), dtype=object)
        for k, i in enumerate(np.asarray(index, np.int64).tolist()):
            out[k] = ExampleEvidence(int(self.example[i]), bool(self.has_gold[i]), tuple(self.documents(i)),
                                     tuple(self.spans(i)))
        return out

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}_ev_{name}": getattr(self, name) for name in FIELDS}

    @classmethod
    def from_arrays(cls, data: dict[str, np.ndarray], prefix: str) -> Evidence | None:
        if f"{prefix}_ev_example" not in data:
            return None
        return cls(**{name: data[f"{prefix}_ev_{name}"] for name in FIELDS})


def evidence_of(spans: list[list[tuple[int, int]]], documents: list[list[tuple[Any, int, int]]] | None,
                lengths: Sequence[int]) -> Evidence:
    """From a reader's per-example spans (on the concatenated selectable text) and document bounds
    `(docid, start, end)`; an example without `documents` is one document of `lengths[i]` tokens."""
    n = len(spans)
    bounds = documents if documents is not None else [[("", 0, int(length))] for length in lengths]
    doc_counts = np.fromiter((len(b) for b in bounds), np.int64, n)
    doc_start = np.fromiter((s for b in bounds for _, s, _ in b), np.int64, int(doc_counts.sum()))
    doc_end = np.fromiter((e for b in bounds for _, _, e in b), np.int64, int(doc_counts.sum()))
    span_doc, span_start, span_end, span_counts = [], [], [], []
    for ex_spans, ex_bounds in zip(spans, bounds):
        span_counts.append(len(ex_spans))
        for s, e in ex_spans:
            d = next((k for k, (_, a, b) in enumerate(ex_bounds) if a <= s and e <= b), None)
            if d is None:
                raise ValueError(f"evidence span [{s}, {e}) does not lie inside one document {ex_bounds}")
            span_doc.append(d)
            span_start.append(s - ex_bounds[d][1])
            span_end.append(e - ex_bounds[d][1])
    doc_offsets = np.zeros(n + 1, np.int64)
    np.cumsum(doc_counts, out=doc_offsets[1:])
    span_offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.asarray(span_counts, np.int64), out=span_offsets[1:])
    return Evidence(np.arange(n, dtype=np.int64), (np.asarray(span_counts) > 0).astype(np.uint8), doc_offsets,
                    doc_start, doc_end, span_offsets, np.asarray(span_doc, np.int64),
                    np.asarray(span_start, np.int64), np.asarray(span_end, np.int64))
