"""The synthetic corpus: deterministic across processes, in the Beer format, with the planted properties."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ratbench.data.formats.beer import read_beer_annotations, read_beer_reviews
from ratbench.data.synthetic import SynthConfig, ensure_synthetic, generate, synth_stats

SMALL = SynthConfig(n_train=600, n_dev=150, n_test=400)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthroot")
    return ensure_synthetic(root, SMALL, quiet=True)


def _digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_deterministic_across_processes_and_hash_seeds(tmp_path, corpus_dir):
    code = ("import sys; from pathlib import Path; from ratbench.data.synthetic import generate, SynthConfig; "
            "generate(Path(sys.argv[1]), SynthConfig(n_train=600, n_dev=150, n_test=400))")
    for seed in ("1", "999"):
        out = tmp_path / f"gen{seed}"
        subprocess.run([sys.executable, "-c", code, str(out)], check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed})
        assert _digests(out) == _digests(corpus_dir)


def test_files_parse_with_the_beer_readers(corpus_dir):
    for a in range(3):
        train = read_beer_reviews(corpus_dir / f"reviews.aspect{a}.train.txt.gz", a)
        test = read_beer_annotations(corpus_dir / "annotations.json", a)
        assert len(train) > 400 and len(test) > 250
        share = np.mean(train.labels)
        assert 0.6 < share < 0.85  # unbalanced like real beer, so balancing matters
        assert 0.3 < np.mean(test.labels) < 0.7  # the test set has enough negatives
    first = json.loads((corpus_dir / "annotations.json").read_text().splitlines()[0])
    assert set(first) >= {"x", "y", "0", "1", "2", "3", "4"} and len(first["y"]) == 5


def test_planted_properties(corpus_dir):
    stats = synth_stats(corpus_dir)
    assert 0.45 < stats["correlation"] < 0.75
    for s in stats["aspects"].values():
        assert 10.0 < s["gold_sparsity"] < 20.0
        assert 95 < s["train"]["avg_len"] < 150
        # the target text decides the label; the other aspects are a real but weaker shortcut
        assert s["target_text_acc"] > 88.0
        assert 60.0 < s["other_text_acc"] < s["target_text_acc"] - 8.0
    lengths = [len(json.loads(line)["x"]) for line in (corpus_dir / "annotations.json").read_text().splitlines()]
    assert max(lengths) > 180  # a long tail (the default corpus has reviews above the 256-token cut)


def test_gold_spans_cover_exactly_the_aspect_sentences(corpus_dir):
    from ratbench.data.synthetic import NOUNS

    row = json.loads((corpus_dir / "annotations.json").read_text().splitlines()[0])
    for a, aspect in enumerate(["appearance", "aroma", "palate"]):
        for start, end in row[str(a)]:
            words = row["x"][start:end]
            assert words[-1] == "." and any(w in NOUNS[aspect] for w in words)


def test_generate_is_atomic_and_reused(tmp_path, monkeypatch):
    root = tmp_path / "r"
    d = ensure_synthetic(root, SMALL, quiet=True)
    mtime = (d / "vectors.txt").stat().st_mtime_ns

    def boom(*a, **k):
        raise AssertionError("must not regenerate")

    monkeypatch.setattr("ratbench.data.synthetic.generate", boom)
    assert ensure_synthetic(root, SMALL, quiet=True) == d and (d / "vectors.txt").stat().st_mtime_ns == mtime
    # a failing generation leaves no partial directory behind
    monkeypatch.setattr("ratbench.data.synthetic.generate", lambda out, cfg: (_ for _ in ()).throw(OSError("disk")))
    with pytest.raises(OSError):
        ensure_synthetic(tmp_path / "r2", SMALL, quiet=True)
    assert not any(p.name.startswith(".synth-partial") for p in (tmp_path / "r2" / "synth").iterdir())
    assert generate is not None


def test_vectors_encode_polarity_and_topic_like_glove(corpus_dir):
    from gensim.models import KeyedVectors

    kv = KeyedVectors.load_word2vec_format(str(corpus_dir / "vectors.txt"), binary=False)
    norms = np.linalg.norm(kv.vectors, axis=1)
    assert 4.0 < np.median(norms) < 7.0  # GloVe-100d scale
    # same polarity and aspect beats opposite polarity in the same template slots
    assert kv.similarity("gorgeous", "brilliant") > kv.similarity("gorgeous", "dirty") + 0.2
    assert kv.similarity("excellent", "amazing") > kv.similarity("excellent", "awful") + 0.2
    # an aspect's own words are closer to each other than to another aspect's
    assert kv.similarity("lacing", "foam") > kv.similarity("lacing", "bitterness")


def _template_words(templates: list[str]) -> set[str]:
    return {w for t in templates for w in t.split() if not w.startswith("{")}


def test_aspect_phrasings_stay_inside_their_aspect(tmp_path):
    """`aspect_template_share`: each aspect's own phrasing words occur only inside that aspect's gold spans;
    at the default 0 they never occur (the default corpus is the shared-template one)."""
    from ratbench.data import synthetic as sy

    ASPECTS, ASPECT_TEMPLATES = sy.ASPECTS, sy.ASPECT_TEMPLATES
    slot_words = [*sy.INTENSIFIERS, *(w for ws in sy.FILLER_WORDS.values() for w in ws),
                  *(w for ws in sy.SENTIMENT for w in ws),
                  *(w for d in (sy.NOUNS, sy.DESCRIPTORS) for ws in d.values() for w in ws),
                  *(w for pair in sy.ASPECT_SENTIMENT.values() for ws in pair for w in ws)]
    shared = _template_words(sy.TEMPLATES + sy.NEGATED + sy.FILLER + slot_words)
    own = {a: _template_words(ASPECT_TEMPLATES[a]) - shared
           - set().union(*(_template_words(ASPECT_TEMPLATES[b]) for b in ASPECTS if b != a)) for a in ASPECTS}
    assert all(own.values())
    for share, out in ((1.0, tmp_path / "own"), (0.0, tmp_path / "default")):
        generate(out, SynthConfig(n_train=50, n_dev=10, n_test=150, aspect_template_share=share))
        seen = {a: 0 for a in ASPECTS}
        for line in (out / "annotations.json").read_text().splitlines():
            row = json.loads(line)
            inside = {}
            for a, aspect in enumerate(ASPECTS):
                for start, end in row[str(a)]:
                    inside.update(dict.fromkeys(range(start, end), aspect))
            for i, word in enumerate(row["x"]):
                for aspect, words in own.items():
                    if word in words:
                        assert inside.get(i) == aspect, (word, aspect, inside.get(i))
                        seen[aspect] += 1
        assert all(n > 20 for n in seen.values()) if share else not any(seen.values())
