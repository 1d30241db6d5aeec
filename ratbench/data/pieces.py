"""Dataset name -> a `Corpus` of sub-word pieces for the transformer backbone, tokenised once and cached.

Each split holds the pieces of `[CLS] (query [SEP])? document [SEP]` (data/subwords.py): ids, segment ids,
`forced` (1 on [CLS], [SEP] and query pieces: always read by the predictor, never selectable, outside every
sparsity denominator), the word each piece belongs to, piece-level gold (a word's gold copied to each of its
pieces) and word-level gold, so metrics are reported per word (a word is selected if any of its pieces is)
and per piece (the published BERT code's level). The encoder's tokenizer decides the pieces: the built-in
`local` encoder of the synthetic corpora is word-level (one piece per word), a BERT WordPiece vocabulary
splits rare words.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from ratbench.atomic import write_bytes, write_text
from ratbench.data.catalog import DATASETS
from ratbench.data.corpus import Corpus, Split, with_evidence
from ratbench.data.leakage import audit
from ratbench.data.loading import load_text_corpus
from ratbench.data.prepare import leakage_facts, load_corpus
from ratbench.data.subwords import PieceTable, SubwordSplit, tokenize_split, tokenizer_digest
from ratbench.models.local_encoder import LocalEncoderConfig, build_local_encoder
from ratbench.models.transformer import load_tokenizer

CACHE_VERSION = 1
LOCAL = "local"  # the encoder built from a corpus's own vocabulary and vectors (models/local_encoder.py)


def resolve_encoder(name: str, root: Path, encoder: str, splits: str, mlm_steps: int,
                    local_config: LocalEncoderConfig | None = None) -> str:
    """The encoder spec a run loads: a hub name, a directory, `minilm`; `local` is built (once, cached) from the
    dataset's own word vectors and training texts and becomes its directory. `local_config`: another local
    architecture (benchmarks); runs use the default one with `mlm_steps`."""
    if encoder != LOCAL:
        return encoder
    gru = load_corpus(name, root, "default", splits)
    text = load_text_corpus(name, root, splits)
    directory = build_local_encoder(gru.words, gru.vectors, text.train.tokens, Path(root) / "cache",
                                    local_config or LocalEncoderConfig(mlm_steps=mlm_steps))
    return str(directory)


def piece_split(sub: SubwordSplit) -> Split:
    """A tokenised split as the engine reads it: `forced` marks every position that is not a document piece."""
    real_doc = sub.selectable.astype(bool)
    return Split(
        ids=sub.ids.astype(np.int64), offsets=sub.offsets, labels=sub.labels,
        gold=sub.gold, forced=(~real_doc).astype(np.uint8), token_type=sub.token_type.astype(np.int8),
        word_index=sub.word_index.astype(np.int32), word_offsets=sub.word_offsets, word_gold=sub.word_gold,
    )


def _arrays(prefix: str, split: Split) -> dict[str, np.ndarray]:
    names = ("ids", "offsets", "labels", "gold", "forced", "token_type", "word_index", "word_offsets", "word_gold")
    return {f"{prefix}_{n}": getattr(split, n) for n in names if getattr(split, n) is not None}


def _split_from(data: dict[str, np.ndarray], prefix: str) -> Split:
    fields = {k[len(prefix) + 1:]: v for k, v in data.items() if k.startswith(prefix + "_")}
    return Split(**fields)


def load_piece_corpus(name: str, root: Path, encoder_spec: str, splits: str = "published", max_len: int = 256,
                      max_query_len: int = 32) -> Corpus:
    """The piece-level corpus of dataset `name` for the encoder `encoder_spec` (already resolved)."""
    spec = DATASETS.get(name)
    root = Path(root)
    tokenizer = load_tokenizer(encoder_spec)
    text = load_text_corpus(name, root, splits)
    key_src = {"v": CACHE_VERSION, "dataset": name, "files": sorted(text.files.items()), "splits": splits,
               "tokenizer": tokenizer_digest(tokenizer), "max_len": max_len, "max_query_len": max_query_len}
    key = hashlib.sha256(json.dumps(key_src, sort_keys=True).encode()).hexdigest()[:16]
    cache = root / "cache" / "pieces" / f"{name}-{key}.npz"
    meta_path = cache.with_suffix(".json")
    if cache.exists() and meta_path.exists():
        with np.load(cache, allow_pickle=False) as npz:
            data = dict(npz)
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        parts = [_split_from(data, p) for p in ("train", "dev", "test")]
        return with_evidence(Corpus(name, *parts, words=[], vectors=np.zeros((0, 0), np.float32),
                                    files=meta["files"], vectors_name="", label_names=meta["label_names"],
                                    splits=splits, leakage=meta["leakage"], encoder=encoder_spec,
                                    pieces=meta["pieces"]), text)
    table = PieceTable(tokenizer)
    subs = {}
    for part, split in text.splits().items():
        subs[part] = tokenize_split(tokenizer, split.tokens, split.labels, split.gold, split.queries, max_len,
                                    max_query_len, table)
    corpus = Corpus(name, piece_split(subs["train"]), piece_split(subs["dev"]), piece_split(subs["test"]), words=[],
                    vectors=np.zeros((0, 0), np.float32), files=dict(text.files), vectors_name="",
                    label_names=list(text.label_names), splits=splits, leakage=leakage_facts(audit(text)),
                    encoder=encoder_spec, pieces={p: _stats(s) for p, s in subs.items()})
    buf = io.BytesIO()
    np.savez(buf, **_arrays("train", corpus.train), **_arrays("dev", corpus.dev), **_arrays("test", corpus.test))
    write_bytes(cache, buf.getvalue())
    write_text(meta_path, json.dumps({"files": corpus.files, "label_names": corpus.label_names, "key": key_src,
                                      "leakage": corpus.leakage, "pieces": corpus.pieces, "spec": spec.name}))
    return with_evidence(corpus, text)  # ERASER's evidence as given and each example's documents (data/evidence.py)


def _stats(sub: SubwordSplit) -> dict[str, Any]:
    """What truncation and tokenisation did to a split (recorded with the run)."""
    out = {k: v for k, v in sub.stats.items() if isinstance(v, (int, float))}
    out["mean_pieces"] = float(np.diff(sub.offsets).mean()) if len(sub) else 0.0
    return out
