"""Word vectors: strict GloVe / word2vec-text reading into gensim `KeyedVectors`, and the matrix restricted
to a corpus vocabulary (row 0 = zero vector shared by padding and unknown words, docs/datasets.md#word-vectors),
cached. Which file a run uses is decided in `ratbench.data.vectors`."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from ratbench.atomic import write_bytes, write_text
from ratbench.data.formats.textfile import GZIP_MAGIC
from ratbench.errors import DataFormatError

STANFORD_NAME = "glove.6B.100d.txt"
GENSIM_NAME = "glove-wiki-gigaword-100.gz"
STANFORD_ROWS = 400_000
FIX = ("Re-download with `ratbench data fetch glove --force` or import an intact copy with "
       "`ratbench data import glove FILE`.")


def _open_text(path: Path):
    import gzip

    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == GZIP_MAGIC:
        return gzip.open(path, "rt", encoding="utf-8", newline="\n")
    return open(path, encoding="utf-8", newline="\n")


def read_vectors(path: Path, restrict_to: set[str] | None = None):
    """Validate every line of a vector file and return gensim `KeyedVectors`.

    Accepts Stanford GloVe text (no header) and word2vec text with a `count dim` header (gensim-data's
    `glove-wiki-gigaword-100.gz`, the synthetic corpus's vectors), gzipped or not. Fields are split on ASCII
    spaces only. With `restrict_to`, only those words' vectors are parsed and kept (in file order): the whole
    file is still validated, but only a corpus's few thousand rows cost float parsing.
    """
    from gensim.models import KeyedVectors

    path = Path(path)
    words: list[str] = []
    rows: list[str] = []
    seen: dict[str, int] = {}
    dim = header_count = None
    n = 0
    try:
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.rstrip("\n").rstrip("\r")
                if lineno == 1:
                    head = line.split(" ")
                    if len(head) == 2 and all(h.isdigit() for h in head):
                        header_count, dim = int(head[0]), int(head[1])
                        continue
                    dim = len(line.rstrip(" ").split(" ")) - 1
                    if dim < 1:
                        raise DataFormatError(path, "the first line has no vector values.", line=1, fix=FIX)
                if not line.strip():
                    raise DataFormatError(path, "blank line.", line=lineno, fix=FIX)
                line = line.rstrip(" ")
                if line.count(" ") != dim:
                    raise DataFormatError(path, f"expected a word and {dim} values, found {line.count(' ')} values "
                                          "(ragged or truncated line).", line=lineno, fix=FIX)
                word, rest = line.split(" ", 1)
                if word in seen:
                    raise DataFormatError(path, f"duplicate word {word!r} (first on line {seen[word]}).",
                                          line=lineno, fix=FIX)
                seen[word] = lineno
                n += 1
                if restrict_to is None or word in restrict_to:
                    words.append(word)
                    rows.append(rest)
    except UnicodeDecodeError as err:
        raise DataFormatError(path, f"is not valid UTF-8 ({err.reason}).", line=n + 1, fix=FIX) from None
    except EOFError:
        raise DataFormatError(path, "truncated gzip archive.", fix=FIX) from None
    except OSError as err:
        raise DataFormatError(path, f"cannot be read as text or gzip ({err}).", fix=FIX) from None
    if dim is None:
        raise DataFormatError(path, "file is empty.", fix=FIX)
    if header_count is not None and header_count != n:
        raise DataFormatError(path, f"header announces {header_count} words but the file has {n} (truncated?).",
                              fix=FIX)
    if path.name == STANFORD_NAME and n != STANFORD_ROWS:
        raise DataFormatError(path, f"{STANFORD_NAME} must have {STANFORD_ROWS} rows, found {n} "
                              "(truncated, or a variant with an appended <unk> row).", fix=FIX)
    try:
        matrix = np.array(" ".join(rows).split(" "), dtype=np.float32).reshape(len(rows), dim) if rows else \
            np.zeros((0, dim), np.float32)
    except ValueError:
        bad = next(i for i, r in enumerate(rows) if not _floats_ok(r))
        raise DataFormatError(path, f"non-numeric value in the vector of {words[bad]!r}.", line=seen[words[bad]],
                              fix=FIX) from None
    kv = KeyedVectors(vector_size=dim)
    if words:
        kv.add_vectors(words, matrix)
    kv.n_file_rows = n  # how many rows the file has, for `data info`
    return kv


def _floats_ok(row: str) -> bool:
    try:
        [float(v) for v in row.split(" ")]
        return True
    except ValueError:
        return False


def corpus_embeddings(
    vectors_path: Path, words: set[str], cache_dir: Path, digest: str | None = None
) -> tuple[list[str], np.ndarray]:
    """(row -> word with "" at row 0, float32 matrix) for the corpus words found in the vector file.

    Rows follow the vector file's order. Cached by the file's digest and the word set; a hit reads one npz.
    """
    vectors_path = Path(vectors_path)
    st = vectors_path.stat()
    file_key = digest or f"{vectors_path.name}:{st.st_size}:{st.st_mtime_ns}"
    word_key = hashlib.sha256("\n".join(sorted(words)).encode("utf-8")).hexdigest()
    key = hashlib.sha256(f"{file_key}|{word_key}".encode()).hexdigest()[:20]
    npz, meta = Path(cache_dir) / f"{key}.npz", Path(cache_dir) / f"{key}.json"
    if npz.exists() and meta.exists():
        with np.load(npz) as data:
            matrix = data["matrix"]
        return json.loads(meta.read_text(encoding="utf-8")), matrix
    kv = read_vectors(vectors_path, restrict_to=set(words))
    rows = [""] + list(kv.index_to_key)
    matrix = np.vstack([np.zeros((1, kv.vector_size), np.float32), kv.vectors.astype(np.float32)])
    buf = io.BytesIO()
    np.savez(buf, matrix=matrix)
    write_bytes(npz, buf.getvalue())
    write_text(meta, json.dumps(rows))
    return rows, matrix
