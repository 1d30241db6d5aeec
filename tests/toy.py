"""A tiny in-memory corpus with a planted rationale, for engine tests that must not touch disk."""

from __future__ import annotations

import numpy as np

from ratbench.data.corpus import Corpus, TextSplit, build_split

POS = ["great", "lovely", "superb", "tasty", "fine"]
NEG = ["awful", "stale", "flat", "sour", "thin"]
FILLER = [f"w{i}" for i in range(40)] + [".", ","]


def toy_text(n: int, seed: int) -> TextSplit:
    rng = np.random.default_rng(seed)
    tokens, labels, gold = [], [], []
    for _ in range(n):
        y = int(rng.integers(0, 2))
        length = int(rng.integers(20, 60))
        toks = list(rng.choice(FILLER, length))
        span = int(rng.integers(3, 7))
        start = int(rng.integers(0, length - span))
        words = POS if y else NEG
        for t in range(start, start + span):
            toks[t] = str(rng.choice(words))
        g = np.zeros(length, np.uint8)
        g[start : start + span] = 1
        tokens.append([str(t) for t in toks])
        labels.append(y)
        gold.append(g)
    return TextSplit(tokens, labels, gold)


def toy_corpus(n_train: int = 800, n_dev: int = 200, n_test: int = 200, dim: int = 16) -> Corpus:
    words = [""] + POS + NEG + FILLER
    rng = np.random.default_rng(0)
    vectors = rng.normal(0, 1, (len(words), dim)).astype(np.float32)
    vectors[0] = 0
    index = {w: i for i, w in enumerate(words) if i}
    tr, dv, te = toy_text(n_train, 1), toy_text(n_dev, 2), toy_text(n_test, 3)
    tr.gold = None
    dv.gold = None
    return Corpus("toy", build_split(tr, index), build_split(dv, index), build_split(te, index), words, vectors)


def install_toy_corpus() -> None:
    """Make every dataset name load the toy corpus in this process (a Ray worker setup hook in tests)."""
    import ratbench.data.prepare as prepare
    import ratbench.runner as runner

    corpus = toy_corpus(n_train=300, n_dev=100, n_test=100)
    runner._corpus = lambda name, root: corpus
    prepare.load_corpus = lambda name, root: corpus
