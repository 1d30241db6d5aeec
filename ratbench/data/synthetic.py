"""The built-in synthetic corpus: multi-aspect beer-like reviews with planted gold rationales.

Written in the Lei et al. Beer file format, so it goes through the same loader as the real data. What makes
it a fair test bed for rationalizers:
- each aspect (appearance, aroma, palate, taste, overall) has its own nouns and descriptors, and its
  sentences carry graded sentiment that follows the aspect's score;
- aspect scores share a latent quality (pairwise correlation ~0.6), so the other aspects' sentences predict
  the label well above chance: a shortcut a selector can take instead of the target aspect;
- label noise (the text of ~6 % of target aspects contradicts the score) and neutral filler sentences;
- punctuation, function words and neutral filler sentences are frequent, so a degenerate selector has
  something to pick (and does: see the synth-quick results' README);
- its word vectors play GloVe's part: word2vec on the training text, plus the polarity and topic directions
  that GloVe's geometry has and template text cannot teach (see `_with_semantic_axes`), at GloVe's norm.
Gold rationale of aspect a = the tokens of aspect a's sentences. Generation is deterministic: one numpy
Generator; no Python `hash` anywhere (gensim gets a fixed hash function).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ratbench.data.corpus import binarize
from ratbench.data.manifest import Manifest

ASPECTS = ["appearance", "aroma", "palate", "taste", "overall"]

NOUNS = {
    "appearance": ["color", "head", "lacing", "pour", "clarity", "foam", "collar", "hue", "look", "retention"],
    "aroma": ["aroma", "nose", "smell", "scent", "bouquet", "fragrance"],
    "palate": ["mouthfeel", "body", "carbonation", "texture", "feel", "finish"],
    "taste": ["taste", "flavor", "sweetness", "bitterness", "aftertaste", "profile"],
    "overall": ["beer", "brew", "drinkability", "experience", "bottle", "pint"],
}
DESCRIPTORS = {
    "appearance": ["amber", "golden", "straw", "copper", "ruby", "brown", "black", "hazy", "clear", "murky",
                   "orange", "tan", "white", "off-white"],
    "aroma": ["citrus", "pine", "caramel", "hops", "grapefruit", "banana", "clove", "roast", "coffee", "floral",
              "yeast", "honey", "resin"],
    "palate": ["creamy", "crisp", "silky", "prickly", "oily", "dry", "chewy", "slick", "fizzy", "flat"],
    "taste": ["toffee", "chocolate", "bread", "lemon", "biscuit", "molasses", "plum", "vanilla", "toast", "herbal"],
    "overall": ["session", "seasonal", "imperial", "local", "classic", "sipping", "summer", "winter"],
}
# graded sentiment, shared by all aspects (so *where* a word occurs matters), level 0 (worst) .. 4 (best)
SENTIMENT = [
    ["awful", "disgusting", "terrible", "horrible", "undrinkable", "repulsive", "vile"],
    ["weak", "bland", "disappointing", "dull", "lacking", "poor", "off"],
    ["okay", "average", "decent", "passable", "ordinary", "middling", "fair"],
    ["nice", "good", "pleasant", "solid", "tasty", "enjoyable", "lovely"],
    ["excellent", "amazing", "superb", "outstanding", "wonderful", "fantastic", "stellar"],
]
# aspect-specific sentiment words (a stronger cue that also says which aspect is meant)
ASPECT_SENTIMENT = {
    "appearance": (["thin", "dirty", "lifeless", "sad", "cloudy-grey", "soapy"],
                   ["sticky", "brilliant", "thick", "gorgeous", "radiant", "glowing"]),
    "aroma": (["stale", "skunky", "musty", "faint", "rank", "sulfury"],
              ["fragrant", "inviting", "bold", "fresh", "aromatic", "perfumed"]),
    "palate": (["watery", "harsh", "astringent", "syrupy", "gritty", "sticky-sweet"],
               ["smooth", "velvety", "lively", "balanced", "supple", "plush"]),
    "taste": (["sour", "metallic", "burnt", "cloying", "soapy-tasting", "medicinal"],
              ["rich", "complex", "delicious", "layered", "luscious", "savory"]),
    "overall": (["regrettable", "forgettable", "pointless", "drainpour", "overpriced", "avoidable"],
                ["memorable", "recommended", "worthwhile", "impressive", "classic-worthy", "essential"]),
}
INTENSIFIERS = ["very", "quite", "really", "rather", "pretty", "so", "extremely", "somewhat", "a bit"]
TEMPLATES = [
    "the {n} is {i} {s} .",
    "{s} {n} with {d} notes .",
    "{n} : {s} , {d} and {s2} .",
    "i found the {n} {i} {s} , with hints of {d} .",
    "the {n} comes across as {s} and {d} .",
    "{i} {s} {n} , {d} throughout .",
    "as for the {n} , it was {s} .",
    "{d} {n} that feels {s} to me .",
    "there is a {s} {n} here , {d} mostly .",
    "{n} is {s} but {d} .",
]
# Phrasings only one aspect uses, as in real reviews ("looks hazy", "smells of citrus"), for
# `SynthConfig.aspect_template_share`: the same skeletons for every aspect with its own verb, plus one fixed
# phrase of the same length. Built from one list on purpose: a first version whose aroma phrasings had longer
# fixed runs of words became a decoy that the other aspects' selectors fell into (the continuity regulariser
# rewards long fixed phrases).
_ASPECT_CUES = {  # aspect: (verb, where it is judged)
    "appearance": ("looks", "in the glass"),
    "aroma": ("smells", "on the nose"),
    "palate": ("feels", "in the mouth"),
    "taste": ("tastes", "on the tongue"),
    "overall": ("drinks", "all in all"),
}
ASPECT_TEMPLATES = {
    aspect: [f"{verb} {{s}} , {{d}} {{n}} .", f"{verb} {{i}} {{s}} with a {{d}} {{n}} .",
             f"the {{n}} {verb} {{s}} and {{d}} .", f"{where} the {{n}} is {{s}} ."]
    for aspect, (verb, where) in _ASPECT_CUES.items()
}
NEGATED = ["the {n} is not {s} at all .", "not a {s} {n} , {d} at best ."]
FILLER = [
    "poured from a {num} oz bottle into a {glass} .",
    "bottled on {date} , drank it at cellar temperature .",
    "thanks to {name} for sharing this one .",
    "picked this up at {store} for {price} dollars .",
    "had this on tap at {store} last {day} .",
    "served in a {glass} , shared with {name} .",
    "this is my {num}th review from this brewery .",
    "the label says it is brewed with {d} .",
    "{name} has been telling me to try this since {date} .",
    "it was a {day} evening and the game was on .",
    "reviewed from notes taken on {date} .",
    "the bottle cap was {d} and the label was {d2} .",
]
FILLER_WORDS = {
    "glass": ["pint glass", "tulip", "snifter", "mug", "goblet", "teku", "shaker"],
    "name": ["mike", "sarah", "dave", "my brother", "a friend", "the bartender", "jen"],
    "store": ["the corner shop", "whole foods", "the brewpub", "a bottle shop", "the airport bar"],
    "day": ["monday", "friday", "saturday", "sunday", "week", "night"],
    "date": ["march 3", "june 12", "october 30", "may 8", "january 21", "august 2"],
    "d": ["red", "blue", "green", "simple", "plain", "silver", "crooked"],
}


@dataclass(frozen=True)
class SynthConfig:
    """Sizes and difficulty of the corpus; the default gets `<root>/synth/`, others a hashed subdirectory."""

    n_train: int = 6000  # raw reviews per aspect file (about 4,000 after class balancing)
    n_dev: int = 1000
    n_test: int = 1000  # annotations.json, shared by the aspects
    seed: int = 20261124
    correlation: float = 0.6  # pairwise correlation of the aspect scores in the annotated test set
    # Lower it to mimic Lei et al.'s "decorrelated" train/dev subsets (the annotated set was not decorrelated).
    # At 0.2, RNP's predictor no longer learns from near-random early rationales and training stalls for
    # many more epochs (measured: train accuracy ~51 % after 4 epochs vs ~70 % at 0.6).
    train_correlation: float = 0.6
    # How often a sentence's main judgement word is specific to its aspect ("lacing ... gorgeous") rather than
    # shared by all aspects ("excellent"; shared words still appear in second judgements and negations).
    # Measured (RNP, quick profile, mean test F1 of seeds 1-2 on appearance / aroma / palate, random ~15):
    # 0.8 gave 44 / 19 / 18, 1.0 gives 71 / 25 / 18. With shared judgement words in every aspect the
    # predictor's early signal is spread over all aspects and the selector stays near uniform.
    aspect_word_share: float = 1.0
    descriptor_lean: float = 0.8  # how often a descriptor agrees with the aspect's sentiment
    mean_filler: float = 3.0  # neutral sentences per review (geometric), the degenerate selector's food
    shuffle_share: float = 0.35  # reviews whose sentences are shuffled instead of in aspect order
    max_sentences: int = 3  # sentences per aspect: 1..max_sentences, middle counts most likely
    # Share of judgement sentences phrased in their aspect's own way (ASPECT_TEMPLATES) instead of the shared
    # templates. Off by default: it gives the selector content cues to tell aspects apart, but in the quick
    # budget it trades one aspect's take-off for another's rather than curing the failure.
    # Measured (RNP, quick profile at 10 epochs, test F1 appearance / aroma / palate; default 0: seeds 1 and
    # 2 give 58.7 / 18.9 / 15.9 and 74.7 / 21.0 / 16.6): share 0.5 gives seed 1 25.3 / 20.8 / 52.6 and
    # seed 2 68.7 / 13.1 / 42.8 (palate took off in seeds 1-4, aroma in none); share 1.0, seed 1: 74.1 /
    # 29.6 / 8.5 (palate's selector picks appearance).
    aspect_template_share: float = 0.0
    label_noise: float = 0.06  # share of target aspects whose text contradicts the score
    positive_share: float = 0.7  # train/dev are skewed positive like real beer; test is closer to balanced
    vector_size: int = 100
    # Word2vec on template text puts "excellent" and "awful" in the same contexts, so their vectors barely
    # differ; GloVe, trained on billions of tokens, encodes polarity and topic as directions. These add
    # such directions (a shared polarity axis, one axis per aspect) to the unit-norm word2vec vectors.
    polarity_strength: float = 0.6
    topic_strength: float = 0.4
    # GloVe-6B-100d vectors have norms of about 4-7; the scale matters because the selector's gradient
    # reaches it through e_t * z_t, so unit vectors would weaken it against the regularisers.
    vector_norm: float = 5.0

    def key(self) -> str:
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:10]


def _level(score: float) -> int:
    """0.1..1.0 score -> sentiment level 0..4 (0.5 is 'mixed')."""
    if score <= 0.2:
        return 0
    if score <= 0.4:
        return 1
    if score < 0.6:
        return 2
    if score < 0.8:
        return 3
    return 4


def aspect_words(aspect: str) -> list[str]:
    """The words that only `aspect`'s sentences use (nouns, descriptors, its own judgement words): what the
    vectors' topic direction marks, and how a token's sentence can be told apart from other aspects'."""
    negative, positive = ASPECT_SENTIMENT[aspect]
    return NOUNS[aspect] + DESCRIPTORS[aspect] + negative + positive


def descriptor_halves(aspect: str) -> tuple[list[str], list[str]]:
    """(descriptors that lean positive, those that lean negative): alternate entries of the aspect's list."""
    words = DESCRIPTORS[aspect]
    return words[0::2], words[1::2]


class _Writer:
    def __init__(self, rng: np.random.Generator, cfg: SynthConfig):
        self.rng = rng
        self.cfg = cfg

    def pick(self, seq: list[str]) -> str:
        return seq[int(self.rng.integers(len(seq)))]

    def aspect_sentence(self, aspect: str, level: int) -> list[str]:
        rng = self.rng
        neg_words, pos_words = ASPECT_SENTIMENT[aspect]
        if level != 2 and rng.random() < 0.12:  # negation: "not <opposite>" carries the sentiment
            template = self.pick(NEGATED)
            s = self.pick(SENTIMENT[4 - level if level in (0, 4) else (3 if level == 1 else 1)])
        else:
            # no draw at share 0, so the default corpus keeps its random stream (and its bytes)
            own = self.cfg.aspect_template_share > 0 and rng.random() < self.cfg.aspect_template_share
            template = self.pick(ASPECT_TEMPLATES[aspect] if own else TEMPLATES)
            if level != 2 and rng.random() < self.cfg.aspect_word_share:
                s = self.pick(pos_words if level > 2 else neg_words)
            else:
                s = self.pick(SENTIMENT[level])
        s2_level = level if level != 2 else int(rng.choice([1, 2, 3]))
        text = template.format(
            n=self.pick(NOUNS[aspect]), s=s, s2=self.pick(SENTIMENT[s2_level]), d=self.descriptor(aspect, level),
            i=self.pick(INTENSIFIERS),
        )
        return text.split()

    def descriptor(self, aspect: str, level: int) -> str:
        """Descriptors lean with the score, as in real reviews ("thin", "murky" vs "thick", "clear"): drawn
        from the matching half of the aspect's list with probability `descriptor_lean`."""
        good, bad = descriptor_halves(aspect)
        if level == 2:
            return self.pick(good + bad)
        lean = self.rng.random() < self.cfg.descriptor_lean
        return self.pick(good if (level > 2) == lean else bad)

    def filler_sentence(self) -> list[str]:
        template = self.pick(FILLER)
        fill = {k: self.pick(v) for k, v in FILLER_WORDS.items()}
        text = template.format(num=str(int(self.rng.integers(5, 40))), price=str(int(self.rng.integers(3, 25))),
                               d2=self.pick(FILLER_WORDS["d"]), **fill)
        return text.split()


def _scores(rng: np.random.Generator, n: int, correlation: float, mean: float) -> np.ndarray:
    """(n, 5) scores on the 0.1 grid in [0.1, 1.0] from a shared latent quality."""
    shared = rng.standard_normal((n, 1))
    own = rng.standard_normal((n, len(ASPECTS)))
    latent = np.sqrt(correlation) * shared + np.sqrt(1 - correlation) * own
    return np.clip(np.round((mean + 0.2 * latent) * 10) / 10, 0.1, 1.0)


_SENTENCE_COUNTS = {1: [1], 2: [1, 1, 2], 3: [1, 2, 2, 3], 4: [1, 2, 2, 3, 3, 4]}


def _review(writer: _Writer, scores: np.ndarray, cfg: SynthConfig) -> tuple[list[str], dict[int, list[list[int]]]]:
    rng = writer.rng
    sentences: list[tuple[int, list[str]]] = []  # (aspect index or -1 for filler, tokens)
    for a, aspect in enumerate(ASPECTS):
        level = _level(float(scores[a]))
        if rng.random() < cfg.label_noise and level != 2:
            level = 4 - level  # the text contradicts the score
        n_sent = int(rng.choice(_SENTENCE_COUNTS[cfg.max_sentences]))
        for _ in range(n_sent):
            sentences.append((a, writer.aspect_sentence(aspect, level)))
    # canonical order (appearance, aroma, palate, taste, overall) most of the time, else shuffled
    if rng.random() < cfg.shuffle_share:
        order = rng.permutation(len(sentences))
        sentences = [sentences[i] for i in order]
    n_filler = int(min(rng.geometric(1.0 / cfg.mean_filler), 25))
    for _ in range(n_filler):
        sentences.insert(int(rng.integers(0, len(sentences) + 1)), (-1, writer.filler_sentence()))
    tokens: list[str] = []
    spans: dict[int, list[list[int]]] = {a: [] for a in range(len(ASPECTS))}
    for a, toks in sentences:
        if a >= 0:
            start = len(tokens)
            if spans[a] and spans[a][-1][1] == start:
                spans[a][-1][1] = start + len(toks)
            else:
                spans[a].append([start, start + len(toks)])
        tokens.extend(toks)
    return tokens, spans


def _score_text(scores: np.ndarray) -> str:
    return " ".join(f"{s:.1f}" for s in scores)


def generate(out_dir: Path, config: SynthConfig | None = None) -> None:
    """Write the corpus files into `out_dir` (created; existing files are replaced)."""
    cfg = config or SynthConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(cfg.seed)
    writer = _Writer(rng, cfg)
    train_mean = 0.25 + 0.5 * cfg.positive_share  # 0.6 gives ~70 % positive among labelled reviews
    texts_for_vectors: list[list[str]] = []
    for a in range(3):
        for part, n in (("train", cfg.n_train), ("heldout", cfg.n_dev)):
            scores = _scores(rng, n, cfg.train_correlation, train_mean)
            lines = []
            for row in scores:
                tokens, _ = _review(writer, row, cfg)
                lines.append(f"{_score_text(row)}\t{' '.join(tokens)}\n")
                if part == "train":
                    texts_for_vectors.append(tokens)
            with open(out_dir / f"reviews.aspect{a}.{part}.txt.gz", "wb") as raw:
                with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
                    fh.write("".join(lines).encode("utf-8"))
    scores = _scores(rng, cfg.n_test, cfg.correlation, 0.52)
    with open(out_dir / "annotations.json", "w", encoding="utf-8") as fh:
        for row in scores:
            tokens, spans = _review(writer, row, cfg)
            obj = {"x": tokens, "y": [float(s) for s in row], **{str(a): spans[a] for a in range(len(ASPECTS))}}
            fh.write(json.dumps(obj) + "\n")
    _train_vectors(texts_for_vectors, out_dir / "vectors.txt", cfg)


def _fixed_hash(text: str) -> int:
    """gensim seeds each word's initial vector with hashfxn(word + seed); Python's hash is salted per process."""
    return int.from_bytes(hashlib.md5(text.encode("utf-8")).digest()[:4], "little")


def _train_vectors(texts: list[list[str]], path: Path, cfg: SynthConfig) -> None:
    from gensim.models import Word2Vec

    model = Word2Vec(
        sentences=texts[:6000], vector_size=cfg.vector_size, window=5, min_count=1, workers=1, seed=cfg.seed % 2**31,
        epochs=5, hashfxn=_fixed_hash, sorted_vocab=1,
    )
    wv = model.wv
    wv.vectors = _with_semantic_axes(list(wv.index_to_key), wv.vectors, cfg)
    wv.save_word2vec_format(str(path), binary=False)


def _with_semantic_axes(words: list[str], vectors: np.ndarray, cfg: SynthConfig) -> np.ndarray:
    """Unit-norm word2vec vectors plus GloVe-like semantic directions: shared sentiment words move along one
    polarity axis; an aspect's own words move along that aspect's axis (topic), its sentiment words also along
    the aspect's own polarity axis, so "gorgeous" is closer to "brilliant" than to "delicious"."""
    rng = np.random.default_rng(cfg.seed + 1)
    n_axes = 1 + 2 * len(ASPECTS)
    axes = np.linalg.qr(rng.standard_normal((cfg.vector_size, n_axes)))[0].T  # orthonormal rows
    out = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-6)
    index = {w: i for i, w in enumerate(words)}
    for level, group in enumerate(SENTIMENT):
        for w in group:
            if w in index:
                out[index[w]] += cfg.polarity_strength * (level - 2) / 2 * axes[0]
    for a, aspect in enumerate(ASPECTS):
        topic, own_polarity = axes[1 + 2 * a], axes[2 + 2 * a]
        for w in aspect_words(aspect):
            if w in index:
                out[index[w]] += cfg.topic_strength * topic
        neg, pos = ASPECT_SENTIMENT[aspect]
        for sign, group in ((-1.0, neg), (1.0, pos)):
            for w in group:
                if w in index:
                    out[index[w]] += cfg.polarity_strength * sign * own_polarity
        good, bad = descriptor_halves(aspect)
        for sign, group in ((-0.5, bad), (0.5, good)):  # connotation: weaker than an outright judgement
            for w in group:
                if w in index:
                    out[index[w]] += cfg.polarity_strength * sign * own_polarity
    return (cfg.vector_norm * out).astype(np.float32)


def synth_dir(root: Path, config: SynthConfig | None = None) -> Path:
    cfg = config or SynthConfig()
    return Path(root) / "synth" if cfg == SynthConfig() else Path(root) / "synth" / cfg.key()


def ensure_synthetic(root: Path, config: SynthConfig | None = None, quiet: bool = False) -> Path:
    """Generate the corpus on first use (atomically: a temp dir renamed into place); return its directory."""
    target = synth_dir(root, config)
    if (target / "vectors.txt").exists() and (target / "annotations.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".synth-partial-"))
    try:
        generate(tmp, config)
        if target.exists():  # an older, incomplete attempt
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    manifest = Manifest(root)
    for f in sorted(target.iterdir()):
        if f.is_file():
            manifest.record(f, source="synthetic")
    if not quiet:
        from rich.console import Console

        Console(stderr=True, soft_wrap=True).print(format_stats(synth_stats(target)))
    return target


def synth_vectors_path(root: Path) -> Path:
    return ensure_synthetic(root) / "vectors.txt"


# -- statistics ---------------------------------------------------------------------------------------------
_POS = set(SENTIMENT[3] + SENTIMENT[4]) | {w for _, p in ASPECT_SENTIMENT.values() for w in p}
_NEG = set(SENTIMENT[0] + SENTIMENT[1]) | {w for n, _ in ASPECT_SENTIMENT.values() for w in n}


def _lexicon_predict(tokens: list[str]) -> int:
    score, negate = 0, False
    for t in tokens:
        if t == "not":
            negate = True
            continue
        v = 1 if t in _POS else -1 if t in _NEG else 0
        score += -v if negate else v
        if t == ".":
            negate = False
    return int(score > 0)


def synth_stats(directory: Path) -> dict:
    """Counts, lengths, gold sparsity, score correlation, and the shortcut: how well a sentiment lexicon
    predicts the label from the target aspect's sentences vs from the other aspects' sentences alone."""
    directory = Path(directory)
    rows = [json.loads(line) for line in (directory / "annotations.json").read_text(encoding="utf-8").splitlines()]
    scores = np.array([r["y"] for r in rows])
    corr = np.corrcoef(scores[:, :3].T)
    out: dict = {"directory": str(directory), "correlation": float(np.mean(corr[np.triu_indices(3, 1)])),
                 "aspects": {}}
    for a in range(3):
        counts = {}
        for part in ("train", "heldout"):
            with gzip.open(directory / f"reviews.aspect{a}.{part}.txt.gz", "rt", encoding="utf-8") as fh:
                labels, lengths = [], []
                for line in fh:
                    sc, text = line.rstrip("\n").split("\t")
                    y = binarize(float(sc.split()[a]))
                    if y is not None:
                        labels.append(y)
                        lengths.append(len(text.split()))
            counts[part] = {"pos": int(sum(labels)), "neg": int(len(labels) - sum(labels)),
                            "avg_len": float(np.mean(lengths))}
        gold = total = 0
        own_ok = other_ok = n = 0
        for r in rows:
            y = binarize(r["y"][a])
            if y is None or not r[str(a)]:
                continue
            inside = np.zeros(len(r["x"]), bool)
            for s, e in r[str(a)]:
                inside[s:e] = True
            x = np.array(r["x"], dtype=object)
            gold += int(inside[:256].sum())
            total += min(len(r["x"]), 256)
            own_ok += int(_lexicon_predict(list(x[inside])) == y)
            other_ok += int(_lexicon_predict(list(x[~inside])) == y)
            n += 1
        out["aspects"][ASPECTS[a]] = {
            **counts, "test_n": n, "gold_sparsity": 100.0 * gold / max(total, 1),
            "target_text_acc": 100.0 * own_ok / max(n, 1), "other_text_acc": 100.0 * other_ok / max(n, 1),
        }
    return out


def format_stats(stats: dict) -> str:
    lines = [f"Synthetic corpus in {stats['directory']} (pairwise aspect-score correlation "
             f"{stats['correlation']:.2f})",
             "aspect       train pos/neg   dev pos/neg   avg len  test n  gold S %  lexicon acc: target / others"]
    for name, s in stats["aspects"].items():
        lines.append(
            f"{name:<12} {s['train']['pos']:>5}/{s['train']['neg']:<6}  "
            f"{s['heldout']['pos']:>5}/{s['heldout']['neg']:<6}"
            f"  {s['train']['avg_len']:7.1f}  {s['test_n']:>6}  {s['gold_sparsity']:8.1f}  "
            f"{s['target_text_acc']:5.1f} / {s['other_text_acc']:5.1f}"
        )
    lines.append("The other aspects' text predicts the label well above chance: the shortcut a selector can take.")
    return "\n".join(lines)
