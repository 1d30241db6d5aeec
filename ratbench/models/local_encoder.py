"""A small BERT built from a corpus's own vocabulary and word vectors, for corpora with no pretrained encoder.

The synthetic corpus (and any corpus without network access to a hub) gets a transformer backbone this way:
- tokenizer: one piece per stored word (WordLevel over the corpus vocabulary, split on whitespace only, no
  normalisation: exactly the GRU setting's word lookup), specials [PAD] [UNK] [CLS] [SEP] [MASK] at ids 0-4;
  corpus row r >= 1 gets id r + 4, unknown words get [UNK];
- word embeddings = the corpus vectors (frozen downstream, like the GloVe rows of the GRU models): [PAD] and
  [UNK] are the zero vector as row 0 is in the GRU setting, [CLS]/[SEP]/[MASK] fixed random vectors of the
  vectors' mean norm;
- hidden size = the vectors' dimension (BERT has no embedding projection), `num_heads` must divide it;
- optional masked-language-model pretraining on the training texts, word embeddings frozen throughout
  (the tied output layer predicts a masked word by its fixed vector), deterministic: fixed seeds, one
  thread, a step budget instead of a time budget.
The result is saved with `save_pretrained` in a cache directory keyed by vocabulary, vectors, texts (when
pretrained) and settings, so it is built once; `transformer.load_encoder(directory)` loads it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ratbench.models.transformer import SPECIAL_TOKENS, quiet_transformers, read_ratbench_note, write_ratbench_note

FORMAT_VERSION = 1
N_SPECIALS = len(SPECIAL_TOKENS)
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(N_SPECIALS)


@dataclass(frozen=True)
class LocalEncoderConfig:
    """Architecture and pretraining budget."""

    num_layers: int = 2
    num_heads: int = 2  # head width 50 over 100-d vectors: CPU attention costs per head, so few wide heads
    intermediate_size: int | None = None  # None: 4 x hidden, as in BERT
    max_positions: int = 512
    dropout: float = 0.1
    # Measured on the synthetic corpus (aspect 0; docs/transformers.md): 400 steps of 64-piece windows (~100 s
    # on one shared core) raise a linear probe of the frozen token states for gold-rationale membership from
    # F1 49.7 (no pretraining; the word vectors alone: 47.9) to 60.3 (150 steps of 128-piece windows: 56.9),
    # and leave a 1-epoch fine-tuned full-text classifier unchanged (dev accuracy 92.6 vs 92.8, 3 seeds).
    mlm_steps: int = 400  # 0 = no pretraining (random encoder over the corpus vectors)
    mlm_batch_size: int = 32
    mlm_max_len: int = 64  # pieces per pretraining window, [CLS]/[SEP] included
    mlm_lr: float = 1e-3
    mlm_mask_prob: float = 0.15
    mlm_warmup: float = 0.1  # share of the steps with a linearly rising learning rate
    seed: int = 0

    def key_fields(self) -> dict[str, Any]:
        fields = dataclasses.asdict(self)
        if self.mlm_steps == 0:  # without pretraining the MLM settings change nothing
            fields = {k: v for k, v in fields.items() if not k.startswith("mlm_")} | {"mlm_steps": 0}
        return fields


def token_ids_for_rows(words: Sequence[str]) -> np.ndarray:
    """Corpus row -> tokenizer id (row 0, the pad/unknown row, and words spelled like a special -> [UNK]), so an
    already-mapped GRU `Split` converts without re-tokenising: `ids = token_ids_for_rows(words)[split.ids]`."""
    out = np.arange(len(words), dtype=np.int64) + N_SPECIALS - 1
    out[0] = UNK_ID
    clash = [r for r, w in enumerate(words) if r > 0 and w in SPECIAL_TOKENS]
    out[clash] = UNK_ID
    return out


def word_level_tokenizer(words: Sequence[str]) -> Any:
    """A fast tokenizer with one piece per word of `words` (index 0 = "" = unknown), specials at ids 0-4."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {s: i for i, s in enumerate(SPECIAL_TOKENS)}
    ids = token_ids_for_rows(words)
    for r in range(1, len(words)):
        if ids[r] != UNK_ID:
            vocab[words[r]] = int(ids[r])
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()  # stored words are whitespace tokens: no further split
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", CLS_ID), ("[SEP]", SEP_ID)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_input_names=["input_ids", "token_type_ids", "attention_mask"],
        model_max_length=512,
    )


def embedding_matrix(words: Sequence[str], vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N_SPECIALS + len(words) - 1, dim) float32: specials, then corpus rows 1.. in order."""
    vectors = np.asarray(vectors, np.float32)
    if vectors.ndim != 2 or len(vectors) != len(words):
        raise ValueError(f"vectors {vectors.shape} do not match {len(words)} words")
    dim = vectors.shape[1]
    norms = np.linalg.norm(vectors[1:], axis=1)
    scale = float(norms[norms > 0].mean()) if (norms > 0).any() else 1.0
    rng = np.random.default_rng(seed)
    special = rng.standard_normal((3, dim)).astype(np.float32)  # [CLS], [SEP], [MASK]
    special *= scale / np.linalg.norm(special, axis=1, keepdims=True)
    out = np.zeros((N_SPECIALS + len(words) - 1, dim), np.float32)
    out[CLS_ID:MASK_ID + 1] = special
    out[N_SPECIALS:] = vectors[1:]
    return out


def bert_config(dim: int, vocab_size: int, cfg: LocalEncoderConfig) -> Any:
    from transformers import BertConfig

    if dim % cfg.num_heads:
        raise ValueError(f"num_heads={cfg.num_heads} must divide the vector dimension {dim}")
    return BertConfig(
        vocab_size=vocab_size, hidden_size=dim, num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size or 4 * dim, max_position_embeddings=cfg.max_positions,
        hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout, type_vocab_size=2,
        pad_token_id=PAD_ID, tie_word_embeddings=True,
    )


def local_encoder_key(
    words: Sequence[str], vectors: np.ndarray, train_tokens: Sequence[Sequence[str]] | None, cfg: LocalEncoderConfig
) -> str:
    h = hashlib.sha256(json.dumps({"format": FORMAT_VERSION, "config": cfg.key_fields()}, sort_keys=True).encode())
    h.update("\n".join(words).encode("utf-8"))
    v = np.ascontiguousarray(vectors, np.float32)
    h.update(str(v.shape).encode())
    h.update(v.tobytes())
    if cfg.mlm_steps > 0:
        h.update(b"\x00texts\x00")
        h.update("\n".join(map(" ".join, train_tokens or [])).encode("utf-8"))
    return h.hexdigest()


def local_encoder_dir(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir).expanduser() / "encoders" / f"local-{key[:16]}"


def build_local_encoder(
    words: Sequence[str],
    vectors: np.ndarray,
    train_tokens: Sequence[Sequence[str]] | None,
    cache_dir: str | Path,
    config: LocalEncoderConfig | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """The cached encoder directory for these words/vectors/texts/settings, built (and pretrained) if absent.

    `words[0]` must be "" (row 0 = pad/unknown, zero vector); `train_tokens` are the training texts as word
    lists (needed only when `config.mlm_steps > 0`).
    """
    cfg = config or LocalEncoderConfig()
    if not words or words[0] != "":
        raise ValueError('words[0] must be "" (the pad/unknown row)')
    if cfg.mlm_steps > 0 and not train_tokens:
        raise ValueError("MLM pretraining needs training texts")
    key = local_encoder_key(words, vectors, train_tokens, cfg)
    target = local_encoder_dir(cache_dir, key)
    note = read_ratbench_note(target) if target.is_dir() else None
    if note is not None and note.get("key") == key:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-partial-"))
    try:
        note = _build(words, vectors, train_tokens, cfg, tmp, log)
        write_ratbench_note(tmp, {"kind": "local", "key": key, "format": FORMAT_VERSION,
                                  "config": dataclasses.asdict(cfg), **note})  # written last: marks it complete
        if target.exists():  # an incomplete earlier attempt, or a concurrent build of the same key
            shutil.rmtree(target, ignore_errors=True)
        _open_permissions(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if read_ratbench_note(target) is None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _open_permissions(directory: Path) -> None:
    """mkdtemp makes 0700 directories; a shared cache needs what a plain mkdir would give."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(directory, 0o777 & ~mask)


def _build(words: Sequence[str], vectors: np.ndarray, train_tokens: Sequence[Sequence[str]] | None,
           cfg: LocalEncoderConfig, out: Path, log: Callable[[str], None] | None) -> dict[str, Any]:
    from transformers import BertForMaskedLM

    tokenizer = word_level_tokenizer(words)
    matrix = embedding_matrix(words, vectors, cfg.seed)
    config = bert_config(matrix.shape[1], matrix.shape[0], cfg)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bitwise reproducible on any machine, and a fair share of a shared CPU
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            mlm = BertForMaskedLM(config)
            emb = mlm.bert.embeddings.word_embeddings
            with torch.no_grad():
                emb.weight.copy_(torch.from_numpy(matrix))
            emb.weight.requires_grad_(False)
            history: dict[str, Any] = {}
            if cfg.mlm_steps > 0:
                history = pretrain_mlm(mlm, words, train_tokens or [], cfg, log)
        mlm.bert.config.architectures = ["BertModel"]
        with quiet_transformers():
            mlm.bert.save_pretrained(out)
            tokenizer.save_pretrained(out)
    finally:
        torch.set_num_threads(threads)
    return {"vocab_size": int(matrix.shape[0]), "dim": int(matrix.shape[1]), **history}


def _flat_ids(words: Sequence[str], texts: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    lookup = {w: int(i) for w, i in zip(words, token_ids_for_rows(words), strict=True) if w}
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    flat = list(chain.from_iterable(texts))
    ids = np.fromiter(map(lookup.get, flat, repeat(UNK_ID)), np.int64, len(flat))
    offsets = np.zeros(len(texts) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return ids, offsets


def mlm_batch(
    ids: np.ndarray, offsets: np.ndarray, rng: np.random.Generator, batch_size: int, max_len: int,
    vocab_size: int, mask_prob: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input ids, attention mask, masked positions (bool), targets at those positions) for one step: random
    examples, a random window of each, BERT's 80/10/10 corruption of `mask_prob` of the words (never [UNK]:
    its vector is zero, so there is nothing to predict)."""
    n = len(offsets) - 1
    pick = rng.integers(0, n, batch_size)
    lengths = offsets[pick + 1] - offsets[pick]
    window = np.minimum(lengths, max_len - 2)
    start = offsets[pick] + (rng.random(batch_size) * (lengths - window + 1)).astype(np.int64)
    width = int(window.max()) + 2
    cols = np.arange(width - 1)
    real = cols[None, :] < window[:, None]
    body = np.where(real, ids[np.where(real, start[:, None] + cols[None, :], 0)], PAD_ID)
    x = np.full((batch_size, width), PAD_ID, np.int64)
    x[:, 0] = CLS_ID
    x[:, 1:] = body
    x[np.arange(batch_size), window + 1] = SEP_ID
    attention = np.zeros((batch_size, width), np.float32)
    attention[:, 0] = 1
    attention[:, 1:] = real
    attention[np.arange(batch_size), window + 1] = 1
    candidate = np.zeros((batch_size, width), bool)
    candidate[:, 1:] = real & (body != UNK_ID)
    masked = candidate & (rng.random((batch_size, width)) < mask_prob)
    if not masked.any() and candidate.any():  # a step with no target would divide by zero
        masked.reshape(-1)[np.flatnonzero(candidate)[0]] = True
    targets = x[masked]
    roll = rng.random(int(masked.sum()))
    corrupted = targets.copy()
    corrupted[roll < 0.8] = MASK_ID
    swap = (roll >= 0.8) & (roll < 0.9)
    corrupted[swap] = rng.integers(N_SPECIALS, vocab_size, int(swap.sum()))
    x[masked] = corrupted
    return torch.from_numpy(x), torch.from_numpy(attention), torch.from_numpy(masked), torch.from_numpy(targets)


def pretrain_mlm(
    mlm: Any, words: Sequence[str], train_tokens: Sequence[Sequence[str]], cfg: LocalEncoderConfig,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Masked-language-model training of `mlm` (a BertForMaskedLM whose word embeddings are frozen) in place."""
    texts = [t for t in train_tokens if len(t)]
    if not texts:
        raise ValueError("MLM pretraining needs non-empty training texts")
    ids, offsets = _flat_ids(words, texts)
    rng = np.random.default_rng(cfg.seed + 1)
    vocab_size = mlm.config.vocab_size
    params = [p for p in mlm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.mlm_lr, weight_decay=0.01)
    warm = max(1, int(cfg.mlm_warmup * cfg.mlm_steps))

    def schedule(step: int) -> float:  # linear warm-up, then linear decay to 0
        return (step + 1) / warm if step < warm else max(0.0, (cfg.mlm_steps - step) / max(1, cfg.mlm_steps - warm))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    mlm.train()
    losses: list[float] = []
    t0 = time.perf_counter()
    for step in range(cfg.mlm_steps):
        x, attention, masked, targets = mlm_batch(ids, offsets, rng, cfg.mlm_batch_size, cfg.mlm_max_len,
                                                  vocab_size, cfg.mlm_mask_prob)
        hidden = mlm.bert(input_ids=x, attention_mask=attention).last_hidden_state
        logits = mlm.cls(hidden[masked])  # only the masked positions: the output layer is vocabulary-wide
        loss = torch.nn.functional.cross_entropy(logits, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if log is not None and (step + 1) % max(1, cfg.mlm_steps // 10) == 0:
            log(f"MLM step {step + 1}/{cfg.mlm_steps}: loss {np.mean(losses[-50:]):.3f}")
    mlm.eval()
    tail = max(1, min(50, len(losses) // 5))
    return {
        "mlm_seconds": round(time.perf_counter() - t0, 1),
        "mlm_loss_first": float(np.mean(losses[:tail])), "mlm_loss_last": float(np.mean(losses[-tail:])),
        "mlm_loss_uniform": math.log(max(2, vocab_size - N_SPECIALS)),
    }
