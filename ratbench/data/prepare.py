"""Dataset name -> ready `Corpus` (token ids + restricted embedding matrix), tokenised once and cached.

The cache key covers the source files (size + recorded sha256), the vector file, the spec's label and
length rules, so a changed or re-imported file rebuilds the cache and nothing else does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from ratbench.atomic import write_bytes, write_text
from ratbench.data.catalog import DATASETS
from ratbench.data.corpus import Corpus, Split, TextCorpus, TextSplit, build_split, corpus_words
from ratbench.data.embeddings import corpus_embeddings
from ratbench.data.evidence import Evidence
from ratbench.data.leakage import LeakageReport, audit
from ratbench.data.loading import load_text_corpus, source_files, vectors_for
from ratbench.data.manifest import Manifest
from ratbench.data.placing import fingerprint_of
from ratbench.data.specs import DatasetSpec

CACHE_VERSION = 2  # 2: the splits variant and its leakage audit
ERASER_LAYOUT = 1  # GRU layout of query tasks (`query SEP document`, corpus.build_query_split); part of ERASER keys


def _fingerprint(paths: list[Path], manifest: Manifest) -> list[list[str]]:
    """[name, identity] per source file, and per folder of documents (ERASER's docs/)."""
    return [fingerprint_of(manifest, p) for p in sorted(paths)]


def _split_arrays(prefix: str, split: Split) -> dict[str, np.ndarray]:
    arrays = {f"{prefix}_ids": split.ids.astype(np.int32), f"{prefix}_offsets": split.offsets,
              f"{prefix}_labels": split.labels}
    if split.gold is not None:
        arrays[f"{prefix}_gold"] = split.gold
    if split.forced is not None:  # a query task's query positions (ERASER)
        arrays[f"{prefix}_forced"] = split.forced
    if split.evidence is not None:
        arrays.update(split.evidence.to_arrays(prefix))
    return arrays


def _split_from(data: dict[str, np.ndarray], prefix: str) -> Split:
    gold = data.get(f"{prefix}_gold")
    return Split(data[f"{prefix}_ids"].astype(np.int64), data[f"{prefix}_offsets"], data[f"{prefix}_labels"], gold,
                 forced=data.get(f"{prefix}_forced"), evidence=Evidence.from_arrays(data, prefix))


def lookup_form(spec: DatasetSpec, text: TextCorpus) -> TextCorpus:
    """The corpus as the word vectors are looked up: lower-cased tokens and queries for a dataset whose spec says
    `lookup: lower` (ERASER's cased tasks against the uncased GloVe 6B); the stored tokens are never changed."""
    if spec.extra.get("lookup") != "lower":
        return text

    def lower(split: TextSplit) -> TextSplit:
        queries = None if split.queries is None else [[w.lower() for w in q] for q in split.queries]
        return dataclasses.replace(split, tokens=[[w.lower() for w in t] for t in split.tokens], queries=queries)

    return dataclasses.replace(text, train=lower(text.train), dev=lower(text.dev), test=lower(text.test))


def leakage_facts(report: LeakageReport) -> dict[str, Any]:
    """What a run records of its splits' overlap: each pair's count and percent, each split's repeats."""
    full = report.to_dict()
    return {
        "normalisation": full["normalisation"],
        "overlaps": {k: {"count": v["count"], "percent": v["percent"], "n": v["n"]}
                     for k, v in full["overlaps"].items()},
        "repeats": {k: v["duplicates"] for k, v in full["splits"].items()},
    }


def dataset_files(name: str, root: Path) -> list[Path]:
    """The source files of a dataset; when one is missing, the loader's error says how to get it."""
    files = list(source_files(name, root).values())
    if not all(f.exists() for f in files):
        load_text_corpus(name, root)  # raises the explanation of what is missing and how to get it
    return files


def load_corpus(name: str, root: Path, vectors: str = "default", splits: str = "published") -> Corpus:
    """Build (or read from cache) the tensors of dataset `name` under data root `root`, with the word vectors
    `vectors` names (`default`: the dataset's own choice, docs/datasets.md#word-vectors), on the published or
    the repaired splits (docs/leakage.md). The splits' leakage audit travels with the corpus."""
    spec = DATASETS.get(name)
    root = Path(root)
    files = dataset_files(name, root)  # raises with the command to obtain the data when missing
    choice = vectors_for(name, vectors, root)
    vec_path = choice.path
    manifest = Manifest(root)
    key_src = {
        "v": CACHE_VERSION,
        "spec": [spec.name, spec.aspect, spec.neg_threshold, spec.pos_threshold, spec.max_len, spec.balance_seed],
        "files": _fingerprint(files, manifest),
        "vectors": _fingerprint([vec_path], manifest),
        "splits": splits,
    }
    if spec.extra.get("task"):  # ERASER: the lookup rule and the query layout (absent for the other families)
        key_src["eraser"] = [spec.extra.get("lookup"), ERASER_LAYOUT]
    key = hashlib.sha256(json.dumps(key_src, sort_keys=True).encode()).hexdigest()[:16]
    cache = root / "cache" / "corpus" / f"{name}-{key}.npz"
    meta_path = cache.with_suffix(".json")
    if cache.exists() and meta_path.exists():
        with np.load(cache, allow_pickle=False) as npz:
            data = dict(npz)
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        return Corpus(name, _split_from(data, "train"), _split_from(data, "dev"), _split_from(data, "test"),
                      meta["words"], data["vectors"], meta["files"], choice.name, meta["label_names"],
                      splits, meta["leakage"])

    text = load_text_corpus(name, root, splits)
    looked_up = lookup_form(spec, text)
    words, vectors = corpus_embeddings(vec_path, corpus_words(looked_up, spec.max_len), root / "cache" / "vectors",
                                       digest=manifest.digest(vec_path))
    index = {w: i for i, w in enumerate(words) if i > 0}
    corpus = Corpus(
        name,
        # evidence travels with the evaluation splits only: training never reads gold
        dataclasses.replace(build_split(looked_up.train, index, spec.max_len), evidence=None),
        build_split(looked_up.dev, index, spec.max_len),
        build_split(looked_up.test, index, spec.max_len),
        list(words),
        np.asarray(vectors, dtype=np.float32),
        {**text.files, str(vec_path): manifest.digest(vec_path)},
        choice.name,
        list(text.label_names),
        splits,
        leakage_facts(audit(text)),
    )
    buf = io.BytesIO()
    arrays = {**_split_arrays("train", corpus.train), **_split_arrays("dev", corpus.dev),
              **_split_arrays("test", corpus.test), "vectors": corpus.vectors}
    np.savez(buf, **arrays)
    write_bytes(cache, buf.getvalue())
    write_text(meta_path, json.dumps({"words": corpus.words, "files": corpus.files, "key": key_src,
                                      "label_names": corpus.label_names, "leakage": corpus.leakage}))
    return corpus
