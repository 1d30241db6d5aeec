"""Words -> sub-word pieces for transformer backbones, aligned both ways, stored flat like `corpus.Split`.

Layout of one example: `[CLS] doc [SEP]`, or `[CLS] query [SEP] doc [SEP]` when the task has queries.
- Each stored word is tokenised on its own (a word never merges with its neighbours, and a word's pieces
  are the same wherever it occurs), so every piece belongs to exactly one word and word-level gold copies
  to all of its pieces; [CLS], [SEP], query pieces and padding get gold 0, `word_index` -1 and are not
  selectable (the query is model input, never part of a rationale nor of a sparsity denominator).
- Truncation to `max_len` pieces *including* the specials: the query is cut to `max_query_len` pieces
  first, then the document gets what is left. A word may lose some of its trailing pieces; it still
  counts as present (word-level metrics see it). Gold on words with no piece left is lost and counted.
- A word that tokenises to nothing (control or zero-width characters only) or to a special token (the
  literal text "[SEP]") becomes one [UNK] piece, so words and their gold never silently disappear.

Speed: the unique word types of a corpus are tokenised once, in one batch call of the fast tokenizer
(`PieceTable`); everything else is numpy on flat arrays (repeat / cumsum / fancy indexing), no Python
loop over tokens. Word-level views of piece-level selections use `np.maximum.reduceat` over the
contiguous pieces of each word.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ratbench.atomic import write_bytes
from ratbench.data.corpus import TextSplit

if TYPE_CHECKING:  # torch is imported where used: data preparation does not need it
    import torch

MAX_LEN = 256  # pieces, specials included
MAX_QUERY_LEN = 32  # query pieces (ERASER's query tasks in the reference setting)


def _exclusive_cumsum(a: np.ndarray) -> np.ndarray:
    out = np.zeros(len(a) + 1, np.int64)
    np.cumsum(a, out=out[1:])
    return out


def _ragged_positions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(starts[i], starts[i] + lengths[i]) over i, vectorised."""
    lengths = np.asarray(lengths, np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    within = np.arange(total, dtype=np.int64) - np.repeat(_exclusive_cumsum(lengths)[:-1], lengths)
    return np.repeat(np.asarray(starts, np.int64), lengths) + within


class PieceTable:
    """Word type -> the pieces it tokenises to on its own; tokenises unseen types in one batch on demand.

    Build one per (corpus, tokenizer) and pass it to `tokenize_split` for every split, so a type shared by
    the splits is tokenised once.
    """

    def __init__(self, tokenizer: Any, words: Iterable[str] = ()):
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("a fast (tokenizers-backed) tokenizer is needed")
        self.tokenizer = tokenizer
        self.index: dict[str, int] = {}
        self.pieces = np.zeros(0, np.int64)
        self.offsets = np.zeros(1, np.int64)
        self.as_unknown = np.zeros(0, bool)  # types replaced by [UNK] (empty, or a special token's text)
        unk = tokenizer.unk_token_id
        if unk is None:
            raise ValueError("the tokenizer has no unknown token")
        self.unk_id = int(unk)
        specials = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id,
                    tokenizer.mask_token_id, getattr(tokenizer, "bos_token_id", None),
                    getattr(tokenizer, "eos_token_id", None)}
        self._specials = np.array(sorted(int(s) for s in specials if s is not None), np.int64)
        self.add(words)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def add(self, words: Iterable[str]) -> None:
        new = [w for w in dict.fromkeys(words) if w not in self.index]
        if not new:
            return
        # one-word lists with is_split_into_words: the pieces a word gets in a space-separated text (this adds
        # the word-initial space marker of byte-level BPE tokenizers, and is plain WordPiece for BERT)
        enc = self.tokenizer([[w] for w in new], is_split_into_words=True, add_special_tokens=False,
                             return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        lengths = np.fromiter(map(len, enc), np.int64, len(enc))
        flat = np.fromiter(chain.from_iterable(enc), np.int64, int(lengths.sum()))
        owner = np.repeat(np.arange(len(enc)), lengths)
        special_hit = np.zeros(len(enc), bool)
        special_hit[owner[np.isin(flat, self._specials)]] = True
        unknown = (lengths == 0) | special_hit
        if unknown.any():
            keep = ~unknown[owner]
            lengths = np.where(unknown, 1, lengths)
            starts = _exclusive_cumsum(lengths)[:-1]
            fixed = np.full(int(lengths.sum()), self.unk_id, np.int64)
            fixed[_ragged_positions(starts[~unknown], lengths[~unknown])] = flat[keep]
            flat = fixed
        base = len(self.index)
        self.index.update(zip(new, range(base, base + len(new)), strict=True))
        self.pieces = np.concatenate([self.pieces, flat])
        self.offsets = np.concatenate([self.offsets, self.offsets[-1] + np.cumsum(lengths)])
        self.as_unknown = np.concatenate([self.as_unknown, unknown])

    def lookup(self, flat_words: Sequence[str]) -> np.ndarray:
        """Type index of each word (unseen types are tokenised and added first)."""
        self.add(flat_words)
        return np.fromiter(map(self.index.__getitem__, flat_words), np.int64, len(flat_words))

    def pieces_of(self, word: str) -> list[int]:
        i = self.lookup([word])[0]
        return self.pieces[self.offsets[i]:self.offsets[i + 1]].tolist()


@dataclass
class SubwordSplit:
    """One split in pieces, flat: example i is ids[offsets[i]:offsets[i+1]], specials included.

    Piece-aligned arrays: ids, token_type, selectable, word_index, gold. Word-aligned arrays (the document
    words that kept at least one piece, i.e. a prefix of each example's words): word_gold, with
    word_offsets. `n_words` is each example's document word count before truncation.
    """

    ids: np.ndarray  # int64
    offsets: np.ndarray  # int64, n + 1
    labels: np.ndarray  # int64
    token_type: np.ndarray  # uint8: 1 on the document segment (and its [SEP]) when there is a query
    selectable: np.ndarray  # uint8: 1 on document pieces only
    word_index: np.ndarray  # int32: index of the piece's word within the example's document, -1 elsewhere
    word_offsets: np.ndarray  # int64, n + 1: kept document words per example
    n_words: np.ndarray  # int64: document words before truncation
    gold: np.ndarray | None = None  # uint8 per piece (word gold copied to its pieces, 0 on specials/query)
    word_gold: np.ndarray | None = None  # uint8 per kept word
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def word_lengths(self) -> np.ndarray:
        """Kept document words per example."""
        return np.diff(self.word_offsets)

    def example(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i]:self.offsets[i + 1]]

    def subset(self, index: np.ndarray) -> SubwordSplit:
        index = np.asarray(index, np.int64)
        pos = _ragged_positions(self.offsets[index], self.lengths[index])
        wpos = _ragged_positions(self.word_offsets[index], self.word_lengths[index])
        return SubwordSplit(
            ids=self.ids[pos], offsets=_exclusive_cumsum(self.lengths[index]), labels=self.labels[index].copy(),
            token_type=self.token_type[pos], selectable=self.selectable[pos], word_index=self.word_index[pos],
            word_offsets=_exclusive_cumsum(self.word_lengths[index]), n_words=self.n_words[index].copy(),
            gold=None if self.gold is None else self.gold[pos],
            word_gold=None if self.word_gold is None else self.word_gold[wpos],
            stats={"subset_of": len(self)},
        )

    # -- persistence (a split is tokenised once per corpus, tokenizer and lengths, then loaded) -------------
    _ARRAYS = ("ids", "offsets", "labels", "token_type", "selectable", "word_index", "word_offsets", "n_words",
               "gold", "word_gold")

    def save(self, path: str | Path) -> None:
        arrays = {k: getattr(self, k) for k in self._ARRAYS if getattr(self, k) is not None}
        buf = io.BytesIO()
        np.savez(buf, stats=np.array(json.dumps(self.stats)), **arrays)
        write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> SubwordSplit:
        with np.load(path, allow_pickle=False) as data:
            kwargs = {k: data[k] for k in cls._ARRAYS if k in data.files}
            stats = json.loads(str(data["stats"]))
        return cls(**kwargs, stats=stats)


def tokenize_split(
    tokenizer: Any,
    tokens: Sequence[Sequence[str]],
    labels: Sequence[int] | np.ndarray,
    gold: Sequence[np.ndarray] | None = None,
    queries: Sequence[Sequence[str]] | None = None,
    max_len: int = MAX_LEN,
    max_query_len: int = MAX_QUERY_LEN,
    table: PieceTable | None = None,
) -> SubwordSplit:
    """Tokenise whitespace-token examples word by word into `[CLS] (query [SEP])? doc [SEP]`, truncated.

    `gold`: one 0/1 array per example, aligned with its words. `stats` of the result: examples truncated,
    words cut inside (some pieces kept), tokens mapped to [UNK] as a whole, and gold lost to truncation
    (`gold_words_lost_fraction`: gold words with no piece left / gold words; `gold_pieces_lost_fraction`).
    """
    n = len(tokens)
    with_query = queries is not None
    n_special = 3 if with_query else 2
    if max_len < n_special + 1:
        raise ValueError(f"max_len={max_len} leaves no room for a document piece")
    if len(labels) != n or (gold is not None and len(gold) != n) or (with_query and len(queries) != n):
        raise ValueError("tokens, labels, gold and queries must have one entry per example")
    table = table if table is not None else PieceTable(tokenizer)
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    if cls_id is None or sep_id is None:
        raise ValueError("the tokenizer has no [CLS]/[SEP] (or <s>/</s>) tokens")
    segments = "token_type_ids" in tokenizer.model_input_names

    # document words -> pieces, before truncation
    n_words = np.fromiter(map(len, tokens), np.int64, n)
    word_off = _exclusive_cumsum(n_words)
    flat_words = list(chain.from_iterable(tokens))
    tid = table.lookup(flat_words)
    plen = table.lengths[tid]
    ex_of_tok = np.repeat(np.arange(n, dtype=np.int64), n_words)
    doc_pieces = np.bincount(ex_of_tok, weights=plen, minlength=n).astype(np.int64)
    tok_cum = _exclusive_cumsum(plen)
    tok_first = tok_cum[:-1] - _exclusive_cumsum(doc_pieces)[ex_of_tok]  # first piece's position in its doc

    # query pieces, cut to max_query_len (and so that at least one document piece fits)
    if with_query:
        q_words = np.fromiter(map(len, queries), np.int64, n)
        q_tid = table.lookup(list(chain.from_iterable(queries)))
        q_plen = table.lengths[q_tid]
        q_ex = np.repeat(np.arange(n, dtype=np.int64), q_words)
        q_pieces = np.bincount(q_ex, weights=q_plen, minlength=n).astype(np.int64)
        q_keep = np.minimum(q_pieces, min(max_query_len, max_len - n_special - 1))
    else:
        q_pieces = q_keep = np.zeros(n, np.int64)
    budget = max_len - n_special - q_keep
    d_keep = np.minimum(doc_pieces, budget)
    total = 1 + (q_keep + 1 if with_query else 0) + d_keep + 1
    out_off = _exclusive_cumsum(total)
    size = int(out_off[-1])
    doc_start = out_off[:-1] + 1 + (q_keep + 1 if with_query else 0)

    ids = np.full(size, sep_id, np.int64)
    ids[out_off[:-1]] = cls_id
    selectable = np.zeros(size, np.uint8)
    word_index = np.full(size, -1, np.int32)

    # every document piece: owner token, its position in the doc, kept or cut
    piece_src = _ragged_positions(table.offsets[tid], plen)
    piece_tok = np.repeat(np.arange(len(tid), dtype=np.int64), plen)
    within = np.arange(len(piece_src), dtype=np.int64) - np.repeat(tok_cum[:-1], plen)
    piece_ex = ex_of_tok[piece_tok]
    pos = tok_first[piece_tok] + within
    kept = pos < d_keep[piece_ex]
    dest = doc_start[piece_ex[kept]] + pos[kept]
    ids[dest] = table.pieces[piece_src[kept]]
    selectable[dest] = 1
    word_index[dest] = (piece_tok[kept] - word_off[ex_of_tok[piece_tok[kept]]]).astype(np.int32)

    if with_query:
        q_src = _ragged_positions(table.offsets[q_tid], q_plen)
        q_ex_piece = np.repeat(q_ex, q_plen)
        q_pos = np.arange(len(q_src), dtype=np.int64) - _exclusive_cumsum(q_pieces)[q_ex_piece]
        q_kept = q_pos < q_keep[q_ex_piece]
        ids[out_off[:-1][q_ex_piece[q_kept]] + 1 + q_pos[q_kept]] = table.pieces[q_src[q_kept]]

    token_type = np.zeros(size, np.uint8)
    if with_query and segments:
        # segment B = the document and its closing [SEP], as BERT's sentence-pair encoding has it
        delta = np.zeros(size + 1, np.int64)
        delta[doc_start] += 1
        delta[out_off[1:]] -= 1
        token_type = np.cumsum(delta[:-1]).astype(np.uint8)

    tok_kept = tok_first < d_keep[ex_of_tok]
    kept_words = np.bincount(ex_of_tok, weights=tok_kept, minlength=n).astype(np.int64)
    piece_gold = word_gold = None
    stats: dict[str, Any] = {
        "examples": n, "pieces": size, "max_len": max_len,
        "examples_truncated": int((d_keep < doc_pieces).sum()),
        "words": int(n_words.sum()), "words_lost": int((~tok_kept).sum()),
        "words_cut_inside": int((tok_kept & (tok_first + plen > d_keep[ex_of_tok])).sum()),
        "words_as_unknown": int(table.as_unknown[tid].sum()),
    }
    if with_query:
        stats.update(max_query_len=max_query_len, queries_truncated=int((q_keep < q_pieces).sum()))
    if gold is not None:
        g_len = np.fromiter(map(len, gold), np.int64, n)
        if not np.array_equal(g_len, n_words):
            bad = int(np.flatnonzero(g_len != n_words)[0])
            raise ValueError(f"example {bad}: gold has {g_len[bad]} entries for {n_words[bad]} words")
        gold_flat = (np.concatenate([np.asarray(g) for g in gold]) if n else np.zeros(0)).astype(bool)
        piece_gold = np.zeros(size, np.uint8)
        piece_gold[dest] = gold_flat[piece_tok[kept]]
        word_gold = gold_flat[tok_kept].astype(np.uint8)
        gold_words = int(gold_flat.sum())
        gold_pieces = int(plen[gold_flat].sum())
        lost_words = int((gold_flat & ~tok_kept).sum())
        lost_pieces = gold_pieces - int(piece_gold.sum())
        stats.update(
            gold_words=gold_words, gold_words_lost=lost_words,
            gold_words_lost_fraction=lost_words / gold_words if gold_words else 0.0,
            gold_pieces=gold_pieces, gold_pieces_lost=lost_pieces,
            gold_pieces_lost_fraction=lost_pieces / gold_pieces if gold_pieces else 0.0,
        )
    return SubwordSplit(
        ids=ids, offsets=out_off, labels=np.asarray(labels, np.int64), token_type=token_type, selectable=selectable,
        word_index=word_index, word_offsets=_exclusive_cumsum(kept_words), n_words=n_words, gold=piece_gold,
        word_gold=word_gold, stats=stats,
    )


def tokenize_text_split(
    tokenizer: Any, split: TextSplit, max_len: int = MAX_LEN, max_query_len: int = MAX_QUERY_LEN,
    table: PieceTable | None = None,
) -> SubwordSplit:
    """`tokenize_split` on a parsed `TextSplit` (its tokens, labels, gold and queries)."""
    return tokenize_split(tokenizer, split.tokens, split.labels, split.gold, split.queries, max_len, max_query_len,
                          table)


# -- batches ------------------------------------------------------------------------------------------------
def padded(offsets: np.ndarray, index: np.ndarray, values: np.ndarray, width: int, fill: int | float = 0
           ) -> np.ndarray:
    """(len(index), width) view of a flat array aligned with `offsets`, `fill` past each example's end."""
    index = np.asarray(index, np.int64)
    lengths = np.diff(offsets)[index]
    cols = np.arange(width)
    valid = cols[None, :] < lengths[:, None]
    pos = np.where(valid, offsets[index][:, None] + cols[None, :], 0)
    taken = values[pos] if values.size else np.zeros(pos.shape, values.dtype)
    return np.where(valid, taken, fill)


@dataclass
class PieceBatch:
    input_ids: torch.Tensor  # (B, L) int64, the tokenizer's pad id at padding
    attention_mask: torch.Tensor  # (B, L) float, 1 at real pieces (specials and query included)
    token_type_ids: torch.Tensor  # (B, L) int64
    selectable: torch.Tensor  # (B, L) float, 1 at document pieces
    word_index: torch.Tensor  # (B, L) int64, -1 at specials, query and padding
    labels: torch.Tensor  # (B,)
    gold: torch.Tensor | None  # (B, L) float piece gold
    index: np.ndarray  # example indices into the split
    n_words: np.ndarray  # (B,) kept document words

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def always_on(self) -> torch.Tensor:
        """Real pieces that are not selectable ([CLS], [SEP], query): what a predictor keeps whatever z is."""
        return self.attention_mask - self.selectable


def make_piece_batch(split: SubwordSplit, index: np.ndarray, pad_id: int, device: Any = "cpu") -> PieceBatch:
    """Pad the examples `index` to their own longest length."""
    import torch

    index = np.asarray(index, np.int64)
    width = max(int(split.lengths[index].max()) if len(index) else 1, 1)
    off = split.offsets

    def t(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device=device, dtype=dtype)

    mask = padded(off, index, np.ones(len(split.ids), np.uint8), width)
    return PieceBatch(
        input_ids=t(padded(off, index, split.ids, width, pad_id), torch.int64),
        attention_mask=t(mask, torch.float32),
        token_type_ids=t(padded(off, index, split.token_type, width), torch.int64),
        selectable=t(padded(off, index, split.selectable, width), torch.float32),
        word_index=t(padded(off, index, split.word_index, width, -1), torch.int64),
        labels=t(split.labels[index], torch.int64),
        gold=None if split.gold is None else t(padded(off, index, split.gold, width), torch.float32),
        index=index,
        n_words=split.word_lengths[index].copy(),
    )


# -- piece <-> word ---------------------------------------------------------------------------------------
REDUCTIONS = ("any", "all", "first")


def pieces_to_words(
    values: np.ndarray, word_index: np.ndarray, width: int | None = None, reduce: str = "any"
) -> np.ndarray:
    """(B, L) per-piece values -> (B, W) per-word values; words past an example's end get 0.

    `reduce`: "any" = maximum over the word's pieces (0/1 selections: a word is selected if any piece is; soft
    scores: the best piece), "all" = minimum (selected only if every kept piece is), "first" = the first
    piece's value. Pieces with word_index -1 ([CLS], [SEP], query, padding) are ignored.
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}")
    values = np.asarray(values)
    word_index = np.asarray(word_index, np.int64)
    if values.shape != word_index.shape or values.ndim != 2:
        raise ValueError(f"values {values.shape} and word_index {word_index.shape} must be the same (B, L)")
    b = values.shape[0]
    if width is None:
        width = int(word_index.max()) + 1 if word_index.size else 0
    out = np.zeros((b, max(width, 0)), values.dtype if values.dtype != bool else np.uint8)
    valid = (word_index >= 0) & (word_index < width)
    if not valid.any():
        return out
    rows = np.nonzero(valid)[0]
    target = rows * width + word_index[valid]  # row-major: each word's pieces are consecutive
    vals = values[valid]
    starts = np.flatnonzero(np.r_[True, target[1:] != target[:-1]])
    if reduce == "any":
        reduced = np.maximum.reduceat(vals, starts)
    elif reduce == "all":
        reduced = np.minimum.reduceat(vals, starts)
    else:
        reduced = vals[starts]
    out.reshape(-1)[target[starts]] = reduced
    return out


def pieces_to_words_torch(values: torch.Tensor, word_index: torch.Tensor, width: int) -> torch.Tensor:
    """The "any" reduction of `pieces_to_words` on tensors (scatter-max), differentiable, on any device."""
    import torch

    b = values.shape[0]
    valid = (word_index >= 0) & (word_index < width)
    target = torch.where(valid, word_index, width)  # one spill column for the ignored pieces
    floor = torch.finfo(values.dtype).min if values.is_floating_point() else torch.iinfo(values.dtype).min
    out = torch.full((b, width + 1), floor, dtype=values.dtype, device=values.device)
    out = out.scatter_reduce(1, target, values, reduce="amax", include_self=True)[:, :width]
    has_piece = torch.zeros((b, width + 1), dtype=torch.bool, device=values.device)
    has_piece = has_piece.scatter(1, target, valid)[:, :width]
    return torch.where(has_piece, out, torch.zeros((), dtype=values.dtype, device=values.device))


def words_to_pieces(word_values: np.ndarray, word_index: np.ndarray) -> np.ndarray:
    """(B, W) per-word values -> (B, L) per-piece values (every piece gets its word's value, 0 elsewhere)."""
    word_values = np.asarray(word_values)
    word_index = np.asarray(word_index, np.int64)
    valid = (word_index >= 0) & (word_index < word_values.shape[1])
    rows = np.broadcast_to(np.arange(word_index.shape[0])[:, None], word_index.shape)
    return np.where(valid, word_values[rows, np.where(valid, word_index, 0)], 0)


@dataclass
class LevelView:
    """Padded (B, T) arrays for `metrics.TokenOverlap.update(selected, gold, mask)` at one level."""

    selected: np.ndarray
    gold: np.ndarray
    mask: np.ndarray


def subword_view(split: SubwordSplit, index: np.ndarray, selected: np.ndarray) -> LevelView:
    """Sub-word level (the reference's): document pieces only, [CLS]/[SEP]/query/padding excluded."""
    selected = np.asarray(selected)
    width = selected.shape[1]
    mask = padded(split.offsets, index, split.selectable, width)
    if split.gold is None:
        raise ValueError("the split has no gold rationales")
    gold = padded(split.offsets, index, split.gold, width)
    return LevelView(selected * mask, gold, mask)


def word_view(split: SubwordSplit, index: np.ndarray, selected: np.ndarray, reduce: str = "any") -> LevelView:
    """Word level: a word is selected if any of its pieces is (`reduce`); words with no piece left after
    truncation are not part of the view (their gold is the lost gold of `split.stats`)."""
    index = np.asarray(index, np.int64)
    selected = np.asarray(selected)
    if split.word_gold is None:
        raise ValueError("the split has no gold rationales")
    wi = padded(split.offsets, index, split.word_index, selected.shape[1], -1)
    width = max(int(split.word_lengths[index].max()) if len(index) else 0, 1)
    sel_w = pieces_to_words(selected, wi, width, reduce)
    gold_w = padded(split.word_offsets, index, split.word_gold, width)
    mask_w = padded(split.word_offsets, index, np.ones(len(split.word_gold), np.uint8), width)
    return LevelView(sel_w * mask_w, gold_w, mask_w)


# -- caching ----------------------------------------------------------------------------------------------
def tokenizer_digest(tokenizer: Any) -> str:
    """Digest of everything that decides the pieces (vocabulary, normaliser, pre-tokeniser, specials)."""
    h = hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode("utf-8"))
    h.update(json.dumps([tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id,
                         tokenizer.unk_token_id, list(tokenizer.model_input_names)]).encode())
    return h.hexdigest()


def split_digest(tokens: Sequence[Sequence[str]], queries: Sequence[Sequence[str]] | None = None) -> str:
    """Digest of a split's text (and queries), for a cache key next to the tokenizer digest and lengths."""
    h = hashlib.sha256("\n".join(map(" ".join, tokens)).encode("utf-8"))
    if queries is not None:
        h.update(b"\x00query\x00")
        h.update("\n".join(map(" ".join, queries)).encode("utf-8"))
    return h.hexdigest()


def load_or_build(path: str | Path, build: Callable[[], SubwordSplit]) -> SubwordSplit:
    """The split cached at `path` (an .npz), else `build()` saved there atomically."""
    path = Path(path)
    if path.is_file():
        try:
            return SubwordSplit.load(path)
        except (OSError, ValueError, KeyError):
            pass  # a damaged or older cache entry is rebuilt
    split = build()
    split.save(path)
    return split
