"""ERASER (DeYoung et al. 2020) in its published layout: a strict reader, the task table, split statistics.

A task folder holds `train.jsonl`, `val.jsonl` and `test.jsonl` (one annotation per line: `annotation_id`,
`classification`, `evidences`, `query`, `query_type`, optionally `docids`) and its documents, either as one
file per document under `docs/` (file name = docid) or as one `docs.jsonl` of `{"docid", "document"}`.
Documents hold one sentence per line, tokens separated by single spaces; a document's tokens are the non-empty
space-separated pieces of its non-empty lines, in order, and evidence offsets index that flattened list.

What the reader returns (`TextSplit`, ERASER's `val` becomes ratbench's `dev`):
- `tokens[i]`: the selectable text; an example over several documents (e-SNLI premise and hypothesis, a FEVER
  claim with several pages) concatenates them and `documents[i]` gives each one's `(docid, start, end)`;
- `queries[i]`: the query's whitespace tokens, model input that is never selectable and never counted in
  sparsity (`None` for Movies, whose constant query carries no information);
- `gold[i]`: the union of every evidence span of every group; `spans[i]`: each evidence span as given, on
  `tokens[i]` (not merged, duplicates kept); an example without evidence has `spans[i] == []` and an
  all-zero mask, is kept for classification and counted in `counts["no_evidence"]`;
- `labels[i]`: the class index in the task's label table; `ids[i]`: the `annotation_id`.
Nothing here imports torch.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ratbench.data.archives import find_task_root
from ratbench.data.corpus import TextCorpus, TextSplit
from ratbench.data.remote import fetch_and_extract
from ratbench.errors import DataFormatError, RatbenchError

URL_PATTERN = "https://www.eraserbenchmark.com/zipped/{archive}.tar.gz"
SPLIT_FILES = {"train": "train.jsonl", "dev": "val.jsonl", "test": "test.jsonl"}
ERASER_CITATION = ("Jay DeYoung, Sarthak Jain, Nazneen Fatema Rajani, Eric Lehman, Caiming Xiong, Richard Socher, "
                   "Byron C. Wallace. ERASER: A Benchmark to Evaluate Rationalized NLP Models. ACL 2020.")
NOT_RECORDED = ("Not recorded by ratbench: ERASER states none and its code licence (Apache-2.0) does not cover the "
                "data; check the terms of the original dataset before redistributing.")
FIX = "Fetch the task again (forcing a fresh download) or re-import it: the files do not follow ERASER's format."


@dataclass(frozen=True)
class EraserTask:
    """One ERASER task: where its archive is, how its records are read, and under which terms it comes.

    `documents` lists the docid patterns tried, in order, for a record whose `docids` is null or absent
    (`{id}` = annotation_id, `{id_prefix}` = annotation_id before the first ':'); each alternative is a tuple of
    documents that together form the example, and the first alternative whose files all exist is taken. A task
    without patterns falls back to the docids its evidences name. `query` is "input" (model input) or
    "dropped". `scored_as` marks a training variant: it is read only when asked for by name, and scored on
    the task named there.
    """

    name: str
    labels: tuple[str, ...]
    archive: str
    size: int | None
    sha256: str | None
    digest_source: str
    licence: str
    origin: str
    citation: str
    documents: tuple[tuple[str, ...], ...] = ()
    query: Literal["input", "dropped"] = "input"
    scored_as: str | None = None
    note: str = ""

    @property
    def url(self) -> str:
        return URL_PATTERN.format(archive=self.archive)

    @property
    def citations(self) -> tuple[str, str]:
        """ERASER itself, then the dataset it took the task from; both are to be cited."""
        return ERASER_CITATION, self.citation


_ESNLI_DOCS = (("{id}_premise", "{id}_hypothesis"),)
_ESNLI_ORIGIN = "e-SNLI (Camburu et al. 2018): SNLI premise/hypothesis pairs with highlighted words."
_ESNLI_CITATION = ("Oana-Maria Camburu, Tim Rocktaeschel, Thomas Lukasiewicz, Phil Blunsom. e-SNLI: Natural "
                   "Language Inference with Natural Language Explanations. NeurIPS 2018.")
_COSE_ORIGIN = ("CoS-E (Rajani et al. 2019) over CommonsenseQA: the document is the question, the query holds the "
                "five answer choices joined by ' [sep] ', the label is the letter of the right choice.")
_COSE_CITATION = ("Nazneen Fatema Rajani, Bryan McCann, Caiming Xiong, Richard Socher. Explain Yourself! Leveraging "
                  "Language Models for Commonsense Reasoning. ACL 2019.")

ERASER_TASKS: dict[str, EraserTask] = {
    t.name: t
    for t in [
        EraserTask(name="movies", labels=("NEG", "POS"), archive="movies", size=3_899_487,
              sha256="66e18d4e6c9df9e9f5544572b0bfe92a39673f74ecbfc3859b46cedb2f5b2dee",
              digest_source="TFDS url_checksums, huggingface/datasets `movie_rationales` and nlp-unibo/pyhighlights "
                            "(three records that agree)",
              licence="No licence field in the Hugging Face `movie_rationales` card; none stated by ERASER.",
              origin="Pang & Lee movie reviews with the rationales of Zaidan et al. (2007/2008); the test split is "
                     "annotated more densely than train.",
              citation="Omar F. Zaidan, Jason Eisner, Christine Piatko. Using \"Annotator Rationales\" to Improve "
                       "Machine Learning for Text Categorization. NAACL 2007.",
              documents=(("{id}",),), query="dropped"),
        EraserTask(name="multirc", labels=("False", "True"), archive="multirc", size=1_667_550,
              sha256="7d3364fad630d0949b40cc5c4b9fd7fac0ec9ebb3a31ffa92a491e3883edd826",
              digest_source="TFDS url_checksums and huggingface/datasets `eraser_multi_rc` (two records that agree)",
              licence="Hugging Face card: `other`; no details.",
              origin="MultiRC (Khashabi et al. 2018); the query is the question and one answer option joined by "
                     "' || '.",
              citation="Daniel Khashabi, Snigdha Chaturvedi, Michael Roth, Shyam Upadhyay, Dan Roth. Looking Beyond "
                       "the Surface: A Challenge Set for Reading Comprehension over Multiple Sentences. NAACL 2018.",
              documents=(("{id_prefix}",),)),
        EraserTask(name="fever", labels=("REFUTES", "SUPPORTS"), archive="fever", size=None, sha256=None,
              digest_source="none published (recorded on first download)",
              licence="CC BY-SA 3.0 / Wikipedia terms (the FEVER licence text is reproduced in the Hugging Face "
                      "`fever` card).",
              origin="FEVER (Thorne et al. 2018) claims over Wikipedia, without the NOT ENOUGH INFO class; the "
                     "query is the claim.",
              citation="James Thorne, Andreas Vlachos, Christos Christodoulopoulos, Arpit Mittal. FEVER: a "
                       "Large-scale Dataset for Fact Extraction and VERification. NAACL 2018."),
        EraserTask(name="boolq", labels=("False", "True"), archive="boolq", size=None, sha256=None,
              digest_source="none published (recorded on first download)", licence=NOT_RECORDED,
              origin="BoolQ (Clark et al. 2019) yes/no questions over Wikipedia passages; the query is the question.",
              citation="Christopher Clark, Kenton Lee, Ming-Wei Chang, Tom Kwiatkowski, Michael Collins, Kristina "
                       "Toutanova. BoolQ: Exploring the Surprising Difficulty of Natural Yes/No Questions. NAACL "
                       "2019."),
        EraserTask(name="evidence_inference",
              labels=("significantly decreased", "no significant difference", "significantly increased"),
              archive="evidence_inference", size=None, sha256=None,
              digest_source="none published (recorded on first download)", licence=NOT_RECORDED,
              origin="Evidence Inference (Lehman et al. 2019): clinical-trial articles with intervention / "
                     "comparator / outcome prompts; the query is the prompt.",
              citation="Eric Lehman, Jay DeYoung, Regina Barzilay, Byron C. Wallace. Inferring Which Medical "
                       "Treatments Work from Reports of Clinical Trials. NAACL 2019."),
        EraserTask(name="cose", labels=("A", "B", "C", "D", "E"), archive="cose", size=None, sha256=None,
              digest_source="none published (recorded on first download)", licence=NOT_RECORDED,
              origin=_COSE_ORIGIN, citation=_COSE_CITATION,
              # releases differ in the question's docid: the annotation_id itself or with a `_query` suffix
              documents=(("{id}",), ("{id}_query",)),
              note="The archive unpacks under data/cose/, not cose/."),
        EraserTask(name="esnli", labels=("entailment", "neutral", "contradiction"), archive="esnli", size=None,
              sha256=None, digest_source="none published (recorded on first download)", licence=NOT_RECORDED,
              origin=_ESNLI_ORIGIN, citation=_ESNLI_CITATION, documents=_ESNLI_DOCS,
              note="Two documents per example, `<id>_premise` and `<id>_hypothesis`, kept distinct."),
        EraserTask(name="esnli_flat", labels=("entailment", "neutral", "contradiction"), archive="esnli", size=None,
              sha256=None, digest_source="none published (recorded on first download)", licence=NOT_RECORDED,
              origin=_ESNLI_ORIGIN, citation=_ESNLI_CITATION, documents=_ESNLI_DOCS + (("{id}",),),
              scored_as="esnli",
              note="Training variant ERASER's baselines train on; expected inside the esnli archive (unverified)."),
        EraserTask(name="cose_simplified", labels=("false", "true"), archive="cose", size=None, sha256=None,
              digest_source="none published (recorded on first download)", licence=NOT_RECORDED,
              origin=_COSE_ORIGIN + " Simplified: one true/false example per answer choice.",
              citation=_COSE_CITATION, documents=(("{id}",),), scored_as="cose",
              note="Training variant ERASER's baselines train on; expected under data/cose_simplified/ in the cose "
                   "archive (unverified)."),
    ]
}

PUBLISHED_TASKS = ("movies", "multirc", "fever", "boolq", "evidence_inference", "cose", "esnli")


def get_task(task: str | EraserTask) -> EraserTask:
    if isinstance(task, EraserTask):
        return task
    if task not in ERASER_TASKS:
        raise RatbenchError(f"Unknown ERASER task {task!r}: choose one of {', '.join(ERASER_TASKS)}.")
    return ERASER_TASKS[task]


# ---------------------------------------------------------------------------------------------------------------
# Published numbers to set a local copy against (`data info`). Split names are ratbench's: dev = ERASER's val.

SOURCES = {
    "hf": "huggingface/datasets `movie_rationales` / `eraser_multi_rc` dataset_infos.json (and nlp-unibo/pyhighlights"
          " for Movies)",
    "rr": "counted on the FEVER and MultiRC val/test files redistributed in princeton-nlp/rationale-robustness "
          "(documents as available there)",
    "eraser_table1": "ERASER paper, Table 1, as recalled by secondary sources (unverified)",
    "eraser_nb": "jayded/eraserbenchmark data_exploration.ipynb (train examples with evidence only)",
    "pyhighlights": "nlp-unibo/pyhighlights documentation (docsrc/source/datasets.rst), approximate",
    "unirex": "facebookresearch/UNIREX src/utils/data.py (split sizes a later paper used)",
}

# task -> split -> metric -> (value, source key); class counts are {label: count}
PUBLISHED_STATS: dict[str, dict[str, dict[str, tuple[Any, str]]]] = {
    "movies": {
        "train": {"examples": (1600, "hf"), "mean_document_tokens": (773.6, "eraser_nb"),
                  "evidence_sparsity_macro": (0.0935, "eraser_nb")},
        "dev": {"examples": (200, "hf")},
        "test": {"examples": (199, "hf"), "evidence_sparsity_macro": (0.31, "pyhighlights")},
    },
    "fever": {
        "train": {"examples": (97957, "eraser_table1")},
        "dev": {"examples": (6122, "rr"), "class_counts": ({"REFUTES": 3103, "SUPPORTS": 3019}, "rr"),
                "mean_document_tokens": (269, "rr"), "mean_query_tokens": (8, "rr"),
                "evidence_sparsity_macro": (0.22, "rr")},
        "test": {"examples": (6111, "rr"), "class_counts": ({"REFUTES": 3078, "SUPPORTS": 3033}, "rr"),
                 "mean_document_tokens": (255, "rr")},
    },
    "multirc": {
        "train": {"examples": (24029, "hf")},
        "dev": {"examples": (3214, "rr"), "class_counts": ({"False": 1762, "True": 1452}, "rr"),
                "mean_document_tokens": (305, "rr"), "mean_query_tokens": (18, "rr"),
                "evidence_sparsity_macro": (0.18, "rr")},
        "test": {"examples": (4848, "rr"), "class_counts": ({"False": 2773, "True": 2075}, "rr"),
                 "mean_document_tokens": (290, "rr")},
    },
    "boolq": {"train": {"examples": (6363, "eraser_table1")}, "dev": {"examples": (1491, "eraser_table1")},
              "test": {"examples": (2817, "eraser_table1")}},
    "evidence_inference": {"train": {"examples": (7958, "eraser_table1")}, "dev": {"examples": (972, "eraser_table1")},
                           "test": {"examples": (959, "eraser_table1")}},
    "cose": {"train": {"examples": (8733, "eraser_table1")}, "dev": {"examples": (1092, "eraser_table1")},
             "test": {"examples": (1092, "eraser_table1")}},
    "esnli": {"train": {"examples": (911938, "eraser_table1")}, "dev": {"examples": (16449, "eraser_table1")},
              "test": {"examples": (16429, "eraser_table1")}},
}

# Other published split sizes that disagree with the above; shown next to them, not used as the reference.
ALTERNATIVE_SIZES: dict[str, dict[str, tuple[int, str]]] = {
    "movies": {"train": (1599, "unirex"), "dev": (200, "unirex"), "test": (200, "unirex")},
    "cose": {"train": (8752, "unirex"), "dev": (1086, "unirex"), "test": (1079, "unirex")},
    "esnli": {"train": (549309, "unirex"), "dev": (9823, "unirex"), "test": (9807, "unirex")},
}


# ---------------------------------------------------------------------------------------------------------------
# Reading


def split_document(text: str) -> list[str]:
    """A document's tokens: non-empty pieces between single spaces, of its non-empty (stripped) lines."""
    return [tok for line in text.split("\n") for tok in line.strip().split(" ") if tok]


@dataclass
class _Evidence:
    docid: str
    start: int
    end: int
    text: str


@dataclass
class _Record:
    line: int
    annotation_id: str
    label: int
    query: list[str] | None
    docids: list[str] | None  # as listed in the record (None: null or absent)
    evidences: list[_Evidence]
    empty_groups: int


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object) for each non-blank line; strict UTF-8 and JSON, errors name the line."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise DataFormatError(path, "file not found.", fix=FIX) from None
    with fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataFormatError(path, f"is not valid UTF-8 (byte {err.start} of the line).", line=lineno,
                                      fix=FIX) from None
            if not text.strip():
                yield lineno, None
                continue
            try:
                yield lineno, json.loads(text)
            except json.JSONDecodeError as err:
                raise DataFormatError(path, f"malformed JSON ({err.msg} at column {err.colno}); the file may be "
                                      "truncated or corrupt.", line=lineno, fix=FIX) from None


def _parse_record(path: Path, lineno: int, obj: Any, task: EraserTask) -> _Record:
    def bad(msg: str) -> DataFormatError:
        return DataFormatError(path, msg, line=lineno, fix=FIX)

    if not isinstance(obj, dict):
        raise bad(f"expected a JSON object, found {type(obj).__name__}.")
    required = ["annotation_id", "classification", "evidences"] + (["query"] if task.query == "input" else [])
    missing = [k for k in required if k not in obj]
    if missing:
        raise bad(f"missing key{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}.")
    aid = obj["annotation_id"]
    if not isinstance(aid, str) or not aid:
        raise bad(f"'annotation_id' must be a non-empty string, found {aid!r}.")
    label = obj["classification"]
    if label not in task.labels:
        raise bad(f"example {aid!r}: unknown label {label!r}; {task.name} labels are "
                  f"{', '.join(map(repr, task.labels))}.")
    query: list[str] | None = None
    if task.query == "input":
        if not isinstance(obj["query"], str):
            raise bad(f"example {aid!r}: 'query' must be a string, found {obj['query']!r}.")
        query = obj["query"].split()
    docids = obj.get("docids")
    if docids is not None:
        if not isinstance(docids, list) or not all(isinstance(d, str) and d for d in docids):
            raise bad(f"example {aid!r}: 'docids' must be null or a list of non-empty strings, found {docids!r}.")
        docids = list(dict.fromkeys(docids)) or None
    groups = obj["evidences"]
    if not isinstance(groups, list) or not all(isinstance(g, list) for g in groups):
        raise bad(f"example {aid!r}: 'evidences' must be a list of evidence groups (lists), found {groups!r:.80}.")
    evidences = []
    for g, group in enumerate(groups):
        for k, ev in enumerate(group):
            where = f"example {aid!r}, evidence group {g}, item {k}"
            if not isinstance(ev, dict):
                raise bad(f"{where}: expected an object, found {ev!r:.60}.")
            absent = [key for key in ("docid", "start_token", "end_token", "text") if key not in ev]
            if absent:
                raise bad(f"{where}: missing key{'s' if len(absent) > 1 else ''} {', '.join(map(repr, absent))}.")
            if not isinstance(ev["docid"], str) or not ev["docid"]:
                raise bad(f"{where}: 'docid' must be a non-empty string, found {ev['docid']!r}.")
            s, e = ev["start_token"], ev["end_token"]
            if not (_is_int(s) and _is_int(e)):
                raise bad(f"{where}: start_token and end_token must be integers, found {s!r} and {e!r}.")
            if s < 0 or e < s:
                raise bad(f"{where}: token span [{s}, {e}) is impossible (need 0 <= start <= end).")
            if not isinstance(ev["text"], str):
                raise bad(f"{where}: 'text' must be a string, found {ev['text']!r:.60}.")
            evidences.append(_Evidence(ev["docid"], s, e, ev["text"]))
    return _Record(lineno, aid, task.labels.index(label), query, docids, evidences, sum(1 for g in groups if not g))


def parse_annotations(path: str | Path, task: str | EraserTask) -> tuple[list[_Record], dict[str, int]]:
    """Validate one split file record by record (structure, label, offsets' types); documents are not read."""
    task = get_task(task)
    path = Path(path)
    records: list[_Record] = []
    counts = {"blank_lines": 0, "duplicate_ids": 0}
    seen: set[str] = set()
    for lineno, obj in _read_jsonl(path):
        if obj is None:
            counts["blank_lines"] += 1
            continue
        rec = _parse_record(path, lineno, obj, task)
        if rec.annotation_id in seen:
            counts["duplicate_ids"] += 1
        seen.add(rec.annotation_id)
        records.append(rec)
    return records, counts


def _candidates(rec: _Record, task: EraserTask) -> list[list[str]]:
    """The document lists an example may be about, in the order they are tried."""
    if rec.docids:
        return [rec.docids]
    fields = {"id": rec.annotation_id, "id_prefix": rec.annotation_id.split(":", 1)[0]}
    alternatives = [[p.format(**fields) for p in alt] for alt in task.documents]
    if not alternatives:
        named = list(dict.fromkeys(ev.docid for ev in rec.evidences))
        if named:
            alternatives.append(named)
    return alternatives


class DocumentStore:
    """The task folder's documents (`docs/` or `docs.jsonl`), read only for the docids asked for."""

    def __init__(self, task_dir: str | Path, wanted: Iterable[str] | None = None):
        self.dir = Path(task_dir)
        docs_dir, docs_file = self.dir / "docs", self.dir / "docs.jsonl"
        if docs_dir.is_dir() and docs_file.is_file():
            raise DataFormatError(self.dir, "holds both docs/ and docs.jsonl; ERASER tasks ship exactly one.",
                                  fix="Remove the one that does not belong to this task.")
        self.counts = {"docs_jsonl_empty_tokens": 0, "duplicate_documents": 0}
        self._tokens: OrderedDict[str, list[str]] = OrderedDict()
        self._raw: dict[str, str] = {}
        self._flagged: set[str] = set()
        if docs_dir.is_dir():
            self.layout = "docs"
            self.source = docs_dir
            # membership in the listing (never a path built from a docid) is what makes a docid readable
            self._names = set(os.listdir(docs_dir))
        elif docs_file.is_file():
            self.layout = "docs.jsonl"
            self.source = docs_file
            self._names = self._load_jsonl(docs_file, None if wanted is None else set(wanted))
        else:
            raise DataFormatError(self.dir, "has neither a docs/ folder nor a docs.jsonl file.", fix=FIX)

    def _load_jsonl(self, path: Path, wanted: set[str] | None) -> set[str]:
        names: set[str] = set()
        for lineno, obj in _read_jsonl(path):
            if obj is None:
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get("docid"), str) or \
                    not isinstance(obj.get("document"), str):
                raise DataFormatError(path, 'expected {"docid": string, "document": string}.', line=lineno, fix=FIX)
            docid, text = obj["docid"], obj["document"]
            if docid in names:
                if self._raw.get(docid, text) != text:
                    raise DataFormatError(path, f"document {docid!r} appears twice with different text.",
                                          line=lineno, fix=FIX)
                self.counts["duplicate_documents"] += 1
            names.add(docid)
            if wanted is None or docid in wanted:
                self._raw[docid] = text  # raw text is far smaller than token lists for e-SNLI's ~1M documents
        return names

    def __contains__(self, docid: str) -> bool:
        return docid in self._names

    CACHE = 4096  # documents kept tokenised; MultiRC asks for the same passage many times in a row

    def tokens(self, docid: str) -> list[str]:
        cached = self._tokens.get(docid)
        if cached is not None:
            self._tokens.move_to_end(docid)
            return cached
        if self.layout == "docs":
            path = self.source / docid
            try:
                data = path.read_bytes()
                text = data.decode("utf-8")
            except UnicodeDecodeError as err:
                line = data[: err.start].count(b"\n") + 1
                raise DataFormatError(path, f"is not valid UTF-8 (byte offset {err.start}).", line=line,
                                      fix=FIX) from None
            except IsADirectoryError:
                raise DataFormatError(path, "is a folder, not a document.", fix=FIX) from None
        else:
            text = self._raw[docid]  # KeyError: not among the docids the store was opened for
            # ERASER's own docs.jsonl loader keeps empty pieces; counted because its offsets would then differ
            if any(not tok for line in text.split("\n") if line.strip() for tok in line.strip().split(" ")):
                self._flagged.add(docid)
                self.counts["docs_jsonl_empty_tokens"] = len(self._flagged)
        toks = split_document(text)
        self._tokens[docid] = toks
        if len(self._tokens) > self.CACHE:
            self._tokens.popitem(last=False)
        return toks


def _build_split(path: Path, records: list[_Record], counts: dict[str, int], task: EraserTask,
                 store: DocumentStore, strict: bool, missing_documents: str) -> TextSplit:
    tokens: list[list[str]] = []
    labels: list[int] = []
    gold: list[np.ndarray] = []
    queries: list[list[str]] = []
    spans: list[list[tuple[int, int]]] = []
    documents: list[list[tuple[str, int, int]]] = []
    ids: list[str] = []
    counts = {**counts, "examples_read": len(records), "missing_document": 0, "no_docid": 0, "no_evidence": 0,
              "empty_evidence_groups": 0, "empty_evidence_spans": 0, "evidence_text_whitespace": 0,
              "evidence_text_mismatch": 0, "empty_documents": 0, "empty_examples": 0, "empty_queries": 0}

    def bad(rec: _Record, msg: str, fix: str = FIX) -> DataFormatError:
        return DataFormatError(path, f"example {rec.annotation_id!r}: {msg}", line=rec.line, fix=fix)

    for rec in records:
        alternatives = _candidates(rec, task)
        if not alternatives:
            if missing_documents == "error":
                raise bad(rec, "lists no docids and has no evidence, so its document cannot be identified.")
            counts["no_docid"] += 1
            continue
        chosen = next((alt for alt in alternatives if all(d in store for d in alt)), None)
        if chosen is None:
            absent = [d for d in alternatives[0] if d not in store]
            if missing_documents == "error":
                raise bad(rec, f"document {absent[0]!r} is not in {store.source}.")
            counts["missing_document"] += 1  # known in some redistributions; the example cannot be built
            continue
        offsets: dict[str, int] = {}
        toks: list[str] = []
        bounds: list[tuple[str, int, int]] = []
        for docid in chosen:
            doc = store.tokens(docid)
            if not doc:
                counts["empty_documents"] += 1
            offsets[docid] = len(toks)
            bounds.append((docid, len(toks), len(toks) + len(doc)))
            toks.extend(doc)
        mask = np.zeros(len(toks), np.uint8)
        ex_spans: list[tuple[int, int]] = []
        counts["empty_evidence_groups"] += rec.empty_groups
        for ev in rec.evidences:
            if ev.docid not in offsets:
                raise bad(rec, f"evidence on document {ev.docid!r}, which is not one of the example's documents "
                          f"({', '.join(chosen)}).")
            doc = store.tokens(ev.docid)
            if ev.end > len(doc):
                raise bad(rec, f"evidence span [{ev.start}, {ev.end}) on {ev.docid!r} ends past the document's "
                          f"{len(doc)} tokens.")
            if ev.start == ev.end:
                counts["empty_evidence_spans"] += 1  # contributes no token; ERASER's own code skips these
                continue
            found = " ".join(doc[ev.start : ev.end])
            if found != ev.text:
                if found == " ".join(ev.text.split()):
                    counts["evidence_text_whitespace"] += 1
                elif strict:
                    raise bad(rec, f"evidence [{ev.start}, {ev.end}) on {ev.docid!r} reads {found!r:.120} in the "
                              f"document, but its text is {ev.text!r:.120}.",
                              fix="The document and the annotations do not belong together; fetch the task again. "
                                  "To read it anyway (offsets are canonical; such evidence is then counted), set "
                                  f"{LENIENT_ENV}=1.")
                else:
                    counts["evidence_text_mismatch"] += 1
            base = offsets[ev.docid]
            ex_spans.append((base + ev.start, base + ev.end))
            mask[base + ev.start : base + ev.end] = 1
        if not ex_spans:
            counts["no_evidence"] += 1  # kept: dropping these would change the class balance
        if not toks:
            counts["empty_examples"] += 1
        if rec.query is not None and not rec.query:
            counts["empty_queries"] += 1
        tokens.append(toks)
        labels.append(rec.label)
        gold.append(mask)
        spans.append(ex_spans)
        documents.append(bounds)
        ids.append(rec.annotation_id)
        if rec.query is not None:
            queries.append(rec.query)
    return TextSplit(tokens=tokens, labels=labels, gold=gold, source=str(path), counts=counts,
                     queries=queries if task.query == "input" else None, spans=spans, documents=documents, ids=ids)


LENIENT_ENV = "RATBENCH_ERASER_LENIENT"  # =1: count evidence whose text disagrees with its offsets, not raise


def read_eraser_corpus(task_dir: str | Path, task: str | EraserTask, *, strict: bool | None = None,
                       missing_documents: Literal["skip", "error"] = "skip", name: str | None = None) -> TextCorpus:
    """Read one task folder (the one holding train.jsonl) into a `TextCorpus` (val -> dev).

    `strict=False` counts evidence whose `text` disagrees with the tokens at its offsets instead of raising; the
    default (None) is strict unless the environment sets `RATBENCH_ERASER_LENIENT=1`.
    `missing_documents="skip"` drops (and counts) examples whose document file is absent, a known defect of
    some redistributions, and examples that name no document at all (no docids, no evidence, no pattern);
    "error" raises instead.
    """
    task = get_task(task)
    task_dir = Path(task_dir)
    if strict is None:
        strict = os.environ.get(LENIENT_ENV) != "1"
    parsed = {split: parse_annotations(task_dir / fname, task) for split, fname in SPLIT_FILES.items()}
    wanted: set[str] = set()
    for records, _ in parsed.values():
        for rec in records:
            for alt in _candidates(rec, task):
                wanted.update(alt)
            wanted.update(ev.docid for ev in rec.evidences)
    store = DocumentStore(task_dir, wanted)
    splits = {split: _build_split(task_dir / SPLIT_FILES[split], recs, counts, task, store, strict, missing_documents)
              for split, (recs, counts) in parsed.items()}
    for split in splits.values():
        split.counts.update({f"store_{k}": v for k, v in store.counts.items()})
    files = {str(task_dir / f): "" for f in SPLIT_FILES.values()}
    files[str(store.source)] = ""
    return TextCorpus(name or f"eraser-{task.name}", splits["train"], splits["dev"], splits["test"], files,
                      list(task.labels))


def has_evidence(split: TextSplit) -> list[bool]:
    """Per example: whether it has gold evidence (rationale metrics skip the others)."""
    if split.spans is None:
        return [bool(g.any()) for g in (split.gold or [])]
    return [bool(s) for s in split.spans]


# ---------------------------------------------------------------------------------------------------------------
# Fetching


def fetch_eraser_task(task: str | EraserTask, root: str | Path, *, url: str | None = None,
                      expected_sha256: str | None = None, force: bool = False, keep_archive: bool = False,
                      validate: bool = False) -> Path:
    """Download and unpack a task's archive under `<root>/eraser/<archive>/`; returns the task folder.

    URL: `url`, else `$RATBENCH_MIRROR/<archive>.tar.gz`, else ERASER's. Digest: `expected_sha256`, else
    `$RATBENCH_EXPECTED_SHA256_ERASER_<ARCHIVE>`, else the table's (with its size), else the pin store
    `<root>/pins.json` (recorded on first download). A training variant is looked up inside its parent's
    archive and is an error, not a substitution, if absent. With `validate`, the task is read strictly from the
    unpacked archive before it is placed: a bad record refuses the whole download (nothing kept, nothing pinned).
    """
    task = get_task(task)
    parent = get_task(task.archive)
    root = Path(root)
    dest = root / "eraser" / parent.name
    if dest.is_dir() and not force:
        return find_task_root(dest, name=task.name)
    mirror = os.environ.get("RATBENCH_MIRROR")
    filename = f"{parent.name}.tar.gz"
    url = url or (f"{mirror.rstrip('/')}/{filename}" if mirror else parent.url)
    env = f"RATBENCH_EXPECTED_SHA256_ERASER_{parent.name.upper()}"
    override = expected_sha256 or os.environ.get(env)
    digest = override or parent.sha256
    size = parent.size if digest == parent.sha256 else None  # a trusted replacement file has its own size
    source = "an override" if override else parent.digest_source
    def check(unpacked: Path) -> None:
        find_task_root(unpacked, name=parent.name)
        if validate:
            read_eraser_corpus(find_task_root(unpacked, name=task.name), task)

    fetch_and_extract(url, root / "downloads", filename, dest, digest, size, root / "pins.json",
                      f"eraser/{filename}", check=check,
                      keep_archive=keep_archive, digest_source=source,
                      override_hint=f"set {env}=<its sha256>")
    return find_task_root(dest, name=task.name)


# ---------------------------------------------------------------------------------------------------------------
# Statistics


def split_statistics(split: TextSplit, label_names: Sequence[str]) -> dict[str, Any]:
    """Examples, class counts, document and query lengths, evidence sparsity, examples without evidence.

    Sparsity = gold tokens / document tokens (the query is not part of the denominator), over the examples
    with evidence: macro = mean of the per-example fractions, micro = pooled.
    """
    n = len(split.labels)
    lengths = np.array([len(t) for t in split.tokens], np.float64)
    labels = np.asarray(split.labels, np.int64)
    flags = has_evidence(split)
    out: dict[str, Any] = {
        "examples": n,
        "class_counts": {name: int((labels == i).sum()) for i, name in enumerate(label_names)},
        "mean_document_tokens": float(lengths.mean()) if n else 0.0,
        "median_document_tokens": float(np.median(lengths)) if n else 0.0,
        "max_document_tokens": int(lengths.max()) if n else 0,
        "examples_without_evidence": int(n - sum(flags)),
    }
    if split.queries is not None:
        q = np.array([len(x) for x in split.queries], np.float64)
        out["mean_query_tokens"] = float(q.mean()) if len(q) else 0.0
    if split.documents is not None:
        out["mean_documents_per_example"] = float(np.mean([len(d) for d in split.documents])) if n else 0.0
    if split.spans is not None:
        out["evidence_spans"] = int(sum(len(s) for s in split.spans))
    if split.gold is not None:
        fr = [float(g.sum()) / len(g) for g, ok in zip(split.gold, flags) if ok and len(g)]
        gold_tok = sum(int(g.sum()) for g, ok in zip(split.gold, flags) if ok)
        doc_tok = sum(len(g) for g, ok in zip(split.gold, flags) if ok)
        out["evidence_sparsity_macro"] = float(np.mean(fr)) if fr else 0.0
        out["evidence_sparsity_micro"] = gold_tok / doc_tok if doc_tok else 0.0
    out["counts"] = dict(split.counts)
    return out


def corpus_statistics(corpus: TextCorpus, task: str | EraserTask) -> dict[str, Any]:
    """`split_statistics` for train/dev/test next to the published numbers (each with its source)."""
    task = get_task(task)
    ref_task = task.scored_as or task.name
    ours = {name: split_statistics(split, corpus.label_names) for name, split in corpus.splits().items()}
    published = {
        split: {metric: {"value": value, "source": SOURCES[src]} for metric, (value, src) in metrics.items()}
        for split, metrics in PUBLISHED_STATS.get(task.name, {}).items()
    }
    rows = []
    for split, metrics in published.items():
        for metric, ref in metrics.items():
            rows.append({"split": split, "metric": metric, "ours": ours.get(split, {}).get(metric),
                         "published": ref["value"], "source": ref["source"]})
    for split, (value, src) in ALTERNATIVE_SIZES.get(task.name, {}).items():
        rows.append({"split": split, "metric": "examples", "ours": ours[split]["examples"], "published": value,
                     "source": SOURCES[src]})
    return {"task": task.name, "scored_as": ref_task, "splits": ours, "published": published, "comparison": rows}

