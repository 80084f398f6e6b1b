"""The ICD-10-CM lexical index: codes and their terms, from the tabular list and the Alphabetic Index.

Sources: every category and subcategory of the tabular list (PyPI package ``simple-icd-10-cm``: 98k codes with
the 7th-character extensions), its inclusion terms, "includes" notes, the terms of "excludes" notes that name
exactly one code (the tabular list's own cross references, "old myocardial infarction (I25.2)"), the code-targeted
lines of ``assets/rules/icd_synonyms.tsv``, and every coded path of the Alphabetic Index
(:mod:`engine.icd.alphabetic`; an incomplete code is attached to its stem, whose default or sided billable child
the linker then picks).

Each term becomes an index *entry* (a "doc") of normalised word stems (:func:`engine.icd.text.term_tokens`).
The result is plain numpy arrays and lists (:class:`IndexData`), cached by :mod:`engine.icd.store`.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from engine.errors import EngineError, ErrorCode
from engine.icd.alphabetic import AlphaEntry
from engine.icd.text import _WORD_RE, ABSENT, ESSENTIAL, is_code, read_rules, stem, term_tokens
from engine.settings import Settings

NONESSENTIAL_WEIGHT = 0.1
"""Share of a nonessential word's IDF that counts against an entry when the mention lacks the word."""

KIND_DESCRIPTION, KIND_INCLUSION, KIND_INCLUDES, KIND_EXCLUDES_REF, KIND_SYNONYM, KIND_INDEX = range(6)
KIND_FACTOR = np.array([1.0, 1.0, 0.97, 0.93, 1.0, 1.0], dtype=np.float32)
"""How far an entry of each kind is trusted (cross references from excludes notes least)."""
KIND_NAMES = ("description", "inclusion", "includes", "excludes-ref", "synonym", "index")

_XREF_RE = re.compile(r"^(?P<term>.+?)\s*\((?P<code>[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{0,4})?)\.?-?\)\s*$")


@dataclass
class IndexData:
    """Everything the linker needs, as arrays (see :func:`build`)."""

    codes: list[str]
    descriptions: list[str]
    billable: np.ndarray  # bool, per code
    extension: np.ndarray  # bool: a 7th-character extension (encounter, fetus) of its parent code
    parent: np.ndarray  # int32, -1 for top categories
    default_leaf: np.ndarray  # int32: the billable code a coder picks when the note says no more
    doc_code: np.ndarray  # int32, per entry
    doc_kind: np.ndarray  # int8
    doc_text: list[str]  # what the entry shows as evidence ("Index: Infarct > myocardium" for Index paths)
    doc_den: np.ndarray  # float32: sum of the entry's word weights (essential IDF + nonessential share)
    vocab: list[str]  # stems
    idf: np.ndarray  # float32 per stem
    post_ptr: np.ndarray  # int64, CSR pointers per stem
    post_doc: np.ndarray  # int32 entry ids
    post_w: np.ndarray  # float32 the stem's weight in that entry (negative: named as absent)
    words: list[str]  # raw words seen in the terms (for spelling correction)
    word_stem: np.ndarray  # int32 stem id per word
    classifiable: dict = field(default_factory=dict)  # Z80-Z87 code -> its "Conditions classifiable to" notes
    meta: dict = field(default_factory=dict)

    @property
    def n_docs(self) -> int:
        """Number of index entries."""
        return len(self.doc_code)


@dataclass
class Tabular:
    """The code hierarchy of the tabular list (before any term is indexed)."""

    codes: list[str]
    descriptions: list[str]
    billable: np.ndarray
    extension: np.ndarray
    parent: np.ndarray
    default_leaf: np.ndarray
    pos: dict[str, int]


def child_rank(code: str, desc: str, extension: bool) -> tuple[int, int]:
    """Lower is better: which child a coder picks when the note gives no more detail."""
    d = desc.lower()
    if extension:
        return (0 if code.endswith("A") else 1 if code.endswith("0") else 2, 0)
    last9 = code.endswith("9")
    # "Alcohol abuse, uncomplicated" (F10.10), not "... with unspecified alcohol-induced disorder" (F10.19);
    # "..., not specified as recurrent" (A04.72), not "..., recurrent".
    if "uncomplicated" in d or d.endswith("not specified as recurrent"):
        return (0, 0)
    if last9 and ("unspecified" in d or "without" in d or "nos" in d.split()):
        return (0, 1)
    if "unspecified" in d and "with unspecified" not in d:
        return (1, 0)
    if last9:
        return (2, 0)
    if "unspecified" in d:
        return (3, 0)
    return (4, 0)


def _xref_terms(notes: Iterable[str]) -> list[tuple[str, str]]:
    out = []
    for note in notes:
        m = _XREF_RE.match(note.strip())
        if m:
            out.append((m.group("term"), m.group("code").rstrip(".")))
    return out


def _package() -> object:
    try:
        import simple_icd_10_cm as cm
    except Exception as exc:  # pragma: no cover - pinned requirement
        raise EngineError(ErrorCode.INDEX_ERROR, f"cannot load simple-icd-10-cm: {exc}") from exc
    return cm


def read_tabular() -> Tabular:
    """The code hierarchy, billability and default billable child of every code."""
    cm: object = _package()
    # Some categories share their name with a one-category block ("B20"): keep every category/subcategory.
    all_codes = list(dict.fromkeys(c for c in cm.get_all_codes(True) if cm.is_category_or_subcategory(c)))
    pos = {c: i for i, c in enumerate(all_codes)}
    descriptions = [cm.get_description(c) for c in all_codes]
    billable = np.array([cm.is_leaf(c) for c in all_codes], dtype=bool)
    extension = np.array([cm.is_extended_subcategory(c) for c in all_codes], dtype=bool)
    parent = np.full(len(all_codes), -1, dtype=np.int32)
    for i, c in enumerate(all_codes):
        p = cm.get_parent(c)
        if p in pos and p != c:
            parent[i] = pos[p]
    default_leaf = np.arange(len(all_codes), dtype=np.int32)
    for i in range(len(all_codes) - 1, -1, -1):
        if billable[i]:
            continue
        kids = [k for k in cm.get_children(all_codes[i]) if k in pos]
        if kids:
            best = min(kids, key=lambda k: (child_rank(k, descriptions[pos[k]], bool(extension[pos[k]])), pos[k]))
            default_leaf[i] = default_leaf[pos[best]]
    return Tabular(all_codes, descriptions, billable, extension, parent, default_leaf, pos)


def code_position(pos: dict[str, int], code: str) -> int | None:
    """Position of ``code``, or of its nearest ancestor in the tabular list (Index codes of an older year)."""
    c = code
    while c:
        if c in pos:
            return pos[c]
        c = c[:-1].rstrip(".")
        if len(c) < 3:
            return None
    return None


def collect_terms(
    tab: Tabular,
    settings: Settings,
    alpha: list[AlphaEntry] | None,
    exclude: set[tuple[str, str]],
    holdout: Callable[[str], bool] | None,
    progress: bool,
) -> tuple[list[tuple[int, int, str, str]], dict[str, list[str]]]:
    """Index entries ``(code index, kind, text to tokenise, evidence text)`` and the classifiable notes.

    ``holdout(code)`` true: the code keeps only its description (the dev protocol's held-out codes).
    """
    cm: object = _package()
    terms: list[tuple[int, int, str, str]] = []
    seen: set[tuple[int, str]] = set()
    classifiable: dict[str, list[str]] = {}
    codes = tab.codes

    def add(ci: int, kind: int, text: str, shown: str | None = None) -> None:
        text = text.strip()
        low = text.lower()
        key = (ci, low)
        if not text or key in seen or (codes[ci], low) in exclude:
            return
        if kind != KIND_DESCRIPTION and holdout is not None and holdout(codes[ci]):
            return
        if "conditions classifiable" in low or low.startswith("conditions in "):
            classifiable.setdefault(codes[ci], []).append(text)
            return
        seen.add(key)
        terms.append((ci, kind, text, shown or text))

    iterator: Iterable[int] = range(len(codes))
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="ICD index: terms", file=sys.stderr, mininterval=1.0, leave=False)
    for i in iterator:
        c = codes[i]
        add(i, KIND_DESCRIPTION, tab.descriptions[i])
        if tab.extension[i]:
            continue
        for t in cm.get_inclusion_term(c):
            add(i, KIND_INCLUSION, t)
        for t in cm.get_includes(c):
            add(i, KIND_INCLUDES, t)
        for term, target in _xref_terms(cm.get_excludes1(c) + cm.get_excludes2(c)):
            if target in tab.pos:
                add(tab.pos[target], KIND_EXCLUDES_REF, term)
    for term, target in read_rules(settings.rules_dir / "icd_synonyms.tsv"):
        if is_code(target) and target in tab.pos:
            add(tab.pos[target], KIND_SYNONYM, term)
    for entry in alpha or ():
        ci = code_position(tab.pos, entry.code)
        if ci is not None:
            add(ci, KIND_INDEX, entry.term, entry.evidence)
    return terms, classifiable


def postings(terms: list[tuple[int, int, str, str]]) -> dict[str, object]:
    """Document frequencies, IDF, per-entry weights and the CSR postings of the entries' stems."""
    vocab_ids: dict[str, int] = {}
    word_ids: dict[str, int] = {}
    flat_sid: list[int] = []
    flat_doc: list[int] = []
    flat_ess: list[int] = []
    for d, (_, _, text, _) in enumerate(terms):
        for s, flag in term_tokens(text):
            flat_sid.append(vocab_ids.setdefault(s, len(vocab_ids)))
            flat_doc.append(d)
            flat_ess.append(flag)
        for w in _WORD_RE.findall(text.lower()):
            if len(w) >= 3 and not w.isdigit() and w not in word_ids:
                word_ids[w] = len(word_ids)
    n_docs = len(terms)
    # Vectorised: Python loops over a million postings are slow.
    sid_arr = np.array(flat_sid, dtype=np.int64)
    doc_arr = np.array(flat_doc, dtype=np.int32)
    flag_arr = np.array(flat_ess, dtype=np.int8)
    df = np.bincount(sid_arr, minlength=len(vocab_ids)).astype(np.float64)
    idf = np.log((n_docs + 1) / (df + 0.5)).astype(np.float32)
    # Stored weight: IDF for essential words, a share of it for optional ones, negated for absent ones.
    factor = np.select([flag_arr == ESSENTIAL, flag_arr == ABSENT], [1.0, -NONESSENTIAL_WEIGHT], NONESSENTIAL_WEIGHT)
    weights = (idf[sid_arr] * factor).astype(np.float32)
    order = np.argsort(sid_arr, kind="stable")
    post_ptr = np.zeros(len(vocab_ids) + 1, dtype=np.int64)
    np.cumsum(df.astype(np.int64), out=post_ptr[1:])
    vocab = [""] * len(vocab_ids)
    for s, i in vocab_ids.items():
        vocab[i] = s
    word_list = list(word_ids)
    return {
        "doc_den": np.bincount(doc_arr, weights=np.abs(weights), minlength=n_docs).astype(np.float32),
        "vocab": vocab,
        "idf": idf,
        "post_ptr": post_ptr,
        "post_doc": doc_arr[order],
        "post_w": weights[order].astype(np.float32),
        "words": word_list,
        "word_stem": np.array([vocab_ids.get(stem(w), -1) for w in word_list], dtype=np.int32),
    }


def build(
    settings: Settings,
    exclude: set[tuple[str, str]] | None = None,
    progress: bool = True,
    alpha: list[AlphaEntry] | None = None,
    holdout: Callable[[str], bool] | None = None,
    meta: dict | None = None,
) -> IndexData:
    """Build the index from the tabular list, the rules and (when given) the Alphabetic Index entries.

    Args:
        settings: Engine settings (``rules_dir``).
        exclude: ``(code, term.lower())`` pairs left out of the index (evaluation hold-outs).
        progress: Show a tqdm bar on stderr.
        alpha: Alphabetic Index entries (:func:`engine.icd.alphabetic.read_index`); ``None``: tabular only.
        holdout: Codes for which only the description is indexed (the dev protocol's held-out codes).
        meta: Extra fields for the index's ``meta``.

    Raises:
        EngineError: ``INDEX_ERROR`` when the package data cannot be read.
    """
    t0 = time.perf_counter()
    tab = read_tabular()
    terms, classifiable = collect_terms(tab, settings, alpha, exclude or set(), holdout, progress)
    post = postings(terms)
    from engine.icd.store import package_fingerprint

    version, year = package_fingerprint()
    kinds = np.array([t[1] for t in terms], dtype=np.int8)
    info = {
        "package": f"simple-icd-10-cm {version}",
        "year": year,
        "n_codes": len(tab.codes),
        "n_billable": int(tab.billable.sum()),
        "n_entries": len(terms),
        "n_index_entries": int((kinds == KIND_INDEX).sum()),
        "alphabetic_index": alpha is not None,
        "build_s": round(time.perf_counter() - t0, 2),
        "excluded_terms": len(exclude or ()),
        **(meta or {}),
    }
    return IndexData(
        codes=tab.codes,
        descriptions=tab.descriptions,
        billable=tab.billable,
        extension=tab.extension,
        parent=tab.parent,
        default_leaf=tab.default_leaf,
        doc_code=np.array([t[0] for t in terms], dtype=np.int32),
        doc_kind=kinds,
        doc_text=[t[3] for t in terms],
        classifiable=classifiable,
        meta=info,
        **post,  # type: ignore[arg-type]
    )
