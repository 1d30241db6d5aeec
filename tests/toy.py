"""An in-memory toy corpus with a planted rationale, for engine tests that build an Engine directly.

Runs through the CLI use the registered `toy` dataset instead (`--datasets toy`, generated under the data root
by `ratbench.data.families.toy`); both come from the same generator.
"""

from __future__ import annotations

import numpy as np

from ratbench.data.corpus import Corpus, TextSplit, build_split
from ratbench.data.families.toy import DIM, FILLER, NEG, POS, toy_reviews


def toy_text(n: int, seed: int) -> TextSplit:
    tokens, labels, gold = [], [], []
    for toks, y, (start, end) in toy_reviews(n, seed):
        g = np.zeros(len(toks), np.uint8)
        g[start:end] = 1
        tokens.append(toks)
        labels.append(y)
        gold.append(g)
    return TextSplit(tokens, labels, gold)


def toy_corpus(n_train: int = 800, n_dev: int = 200, n_test: int = 200, dim: int = DIM) -> Corpus:
    words = [""] + POS + NEG + FILLER
    rng = np.random.default_rng(0)
    vectors = rng.normal(0, 1, (len(words), dim)).astype(np.float32)
    vectors[0] = 0
    index = {w: i for i, w in enumerate(words) if i}
    tr, dv, te = toy_text(n_train, 1), toy_text(n_dev, 2), toy_text(n_test, 3)
    tr.gold = None
    dv.gold = None
    return Corpus("toy", build_split(tr, index), build_split(dv, index), build_split(te, index), words, vectors)
