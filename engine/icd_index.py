"""The ICD-10-CM lexical index: built once from the tabular list, cached on disk, memory-mapped afterwards.

Sources (all from the PyPI package ``simple-icd-10-cm``, never the Alphabetic Index): every category and
subcategory description (98k codes with the 7th-character extensions), inclusion terms, category "includes"
notes, the terms of "excludes" notes that name exactly one code (they are the tabular list's own cross
references, e.g. "old myocardial infarction (I25.2)"), and the code-targeted lines of
``assets/rules/icd_synonyms.tsv``.

Each term becomes an index *entry* (a "doc") of normalised word stems. Words the tabular list marks as
nonessential (in parentheses or brackets, "NOS") and default qualifiers ("unspecified", "initial encounter
for closed fracture", ...) are kept but flagged, so a mention that omits them is not penalised for it. The
cache holds plain numpy arrays and JSON lists, so loading takes a fraction of a second and never imports the
(slow to parse) package.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.errors import EngineError, ErrorCode
from engine.rules import rule_rows
from engine.settings import Settings

INDEX_FORMAT = 9
"""Bump when the cached layout or the term processing changes (part of the cache key)."""

NONESSENTIAL_WEIGHT = 0.1
"""Share of a nonessential word's IDF that counts against an entry when the mention lacks the word."""

KIND_DESCRIPTION, KIND_INCLUSION, KIND_INCLUDES, KIND_EXCLUDES_REF, KIND_SYNONYM = range(5)
KIND_FACTOR = np.array([1.0, 1.0, 0.97, 0.93, 1.0], dtype=np.float32)
"""How far an entry of each kind is trusted (cross references from excludes notes least)."""

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "into",
        "is",
        "it",
        "of",
        "on",
        "or",
        "than",
        "that",
        "the",
        "this",
        "to",
        "with",
        "w",
    ]
)
DEFAULT_WORDS = frozenset(
    [
        "unspecified",
        "nos",
        "unilateral",
        "initial",
        "encounter",
        "primary",
        "essential",
        "mellitus",
        "site",
        "elsewhere",
        "classified",
        "nec",
        "specified",
    ]
)
"""Qualifiers a coder assumes when the note is silent; they never count much against an entry."""
DEFAULT_PHRASES = (
    "without complications",
    "without complication",
    "initial encounter for closed fracture",
    "not elsewhere classified",
    "site not specified",
    "unspecified site",
    "without mention of complication",
    "uncomplicated",
    "not intractable",
    "without status migrainosus",
)

SITED_ABSENT = ("foreign body", "intraarticular extension", "intracondylar extension", "intercondylar fracture",
                "complications")
"""What a "without" clause names before the site of the whole term: in "Laceration without foreign body of right
forearm" only "foreign body" is absent, "right forearm" is the site (unlike "without loss of material")."""

_WORD_RE = re.compile(r"[a-z0-9]+")
_CODE_RE = re.compile(r"^[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?$")
_XREF_RE = re.compile(r"^(?P<term>.+?)\s*\((?P<code>[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{0,4})?)\.?-?\)\s*$")

_BRITISH = (
    ("haem", "hem"),
    ("anaem", "anem"),
    ("aemia", "emia"),
    ("paed", "ped"),
    ("oedema", "edema"),
    ("oesophag", "esophag"),
    ("hoea", "hea"),
    ("tumour", "tumor"),
    ("coeliac", "celiac"),
    ("foetal", "fetal"),
    ("ischaem", "ischem"),
    ("orthopaed", "orthoped"),
    ("oestr", "estr"),
)
_SUFFIXES = (
    ("ational", "at"),
    ("ations", "at"),
    ("ation", "at"),
    ("isms", ""),
    ("ism", ""),
    ("ities", ""),
    ("ity", ""),
    ("ically", ""),
    ("ical", ""),
    ("ions", ""),
    ("ion", ""),
    ("ives", ""),
    ("ive", ""),
    ("ies", "y"),
    ("sses", "ss"),
    ("ings", ""),
    ("ing", ""),
    ("ed", ""),
    ("ic", ""),
    ("al", ""),
    ("es", ""),
    ("ia", ""),
    ("us", ""),
    ("s", ""),
    ("i", ""),
)


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """A light, deterministic stemmer for medical English (inflections and the usual -ic/-ion/-ive forms).

    Both the index and the mentions go through it, so it only has to be consistent, not linguistically exact:
    ``diabetes``/``diabetic`` -> ``diabet``, ``hypertension``/``hypertensive`` -> ``hypertens``,
    ``fractures``/``fractured`` -> ``fractur``. British spellings are folded to American first.
    """
    w = word
    for old, new in _BRITISH:
        if old in w:
            w = w.replace(old, new)
    if len(w) <= 3 or w.isdigit():
        return w
    for suffix, repl in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) + len(repl) >= (3 if suffix == "s" else 4):
            if suffix == "s" and w[-2] in "sui":
                continue
            w = w[: len(w) - len(suffix)] + repl
            break
    if len(w) > 4 and w[-1] in "ey":
        w = w[:-1]
    return w


def words(text: str) -> list[str]:
    """Lower-case alphanumeric words of ``text`` (possessive ``'s`` dropped)."""
    text = text.lower().replace("'s ", " ").replace("’s ", " ")
    if text.endswith(("'s", "’s")):
        text = text[:-2]
    return _WORD_RE.findall(text)


PAREN_RE = re.compile(r"[\(\[]([^\)\]]*)[\)\]]")
DEFAULT_RE = re.compile(r"\b(?:" + "|".join(re.escape(p) for p in DEFAULT_PHRASES) + r")\b")


ESSENTIAL, NONESSENTIAL, ABSENT = 1, 0, -1
"""Word flags in an entry: counts fully; optional; named as absent ("without perforation")."""


def term_tokens(term: str) -> list[tuple[str, int]]:
    """Stems of a tabular term with their flag (:data:`ESSENTIAL`, :data:`NONESSENTIAL`, :data:`ABSENT`).

    Stopwords are removed and stems de-duplicated (the strongest flag wins). Nonessential: words inside
    parentheses or brackets, ``NOS``, :data:`DEFAULT_WORDS`, :data:`DEFAULT_PHRASES`, and the word an
    "unspecified" qualifies ("unspecified part", "site unspecified"). Absent: what a "without" clause names;
    a coder assumes those absent when the note is silent, and a mention that names them contradicts the entry.
    Comma-separated segments are processed (and cached) one by one, since the 7th-character descriptions repeat
    the same tails thousands of times.
    """
    lowered = term.lower()
    parts = lowered.split(", ")
    if any(p.count("(") != p.count(")") or p.count("[") != p.count("]") for p in parts):
        parts = [lowered]
    out: dict[str, int] = {}
    for part in parts:
        for s, flag in _segment_tokens(part):
            out[s] = max(out.get(s, ABSENT), flag)
    return list(out.items())


@lru_cache(maxsize=100_000)
def _segment_tokens(lowered: str) -> tuple[tuple[str, int], ...]:
    main = " " + PAREN_RE.sub(" ", lowered) + " "
    head, _, absent_part = main.partition(" without ")
    # A "with" after the "without" clause starts a positive clause again ("without perforation with bleeding").
    absent_part, _, tail = absent_part.partition(" with ")
    for obj in SITED_ABSENT:
        if absent_part.startswith(obj + " of "):
            tail = absent_part[len(obj) + 4 :] + " " + tail
            absent_part = obj
            break
    head = DEFAULT_RE.sub(" ", head + " " + tail)
    head_words = words(head)
    optional = set(DEFAULT_WORDS)
    for k, w in enumerate(head_words):
        # "part unspecified", "of unspecified part": the qualified word is optional; but not in "Unspecified
        # fracture of ...", where it is the head noun.
        if w == "unspecified" and k > 0 and head_words[k - 1] != "with":
            if k + 1 < len(head_words):
                optional.add(head_words[k + 1])
            if k > 0 and k == len(head_words) - 1:
                optional.add(head_words[k - 1])
    essential = {stem(w) for w in head_words if w not in optional and w not in STOPWORDS}
    absent = {stem(w) for w in words(absent_part) if w not in STOPWORDS} - essential
    out: dict[str, int] = {}
    for w in words(lowered):
        if w in STOPWORDS:
            continue
        s = stem(w)
        if s not in out:
            out[s] = ESSENTIAL if s in essential else ABSENT if s in absent else NONESSENTIAL
    return tuple(out.items())


def read_rules(path: Path) -> list[tuple[str, str]]:
    """``term<TAB>target`` lines of a rules file (comments and blank lines skipped)."""
    rows: list[tuple[str, str]] = []
    for _, parts in rule_rows(path, required=False):
        if len(parts) >= 2 and parts[0].strip() and parts[1].strip():
            rows.append((parts[0].strip(), parts[1].strip()))
    return rows


def is_code(text: str) -> bool:
    """Whether ``text`` looks like an ICD-10-CM code written with its dot (``I21.9``, ``E11``)."""
    return bool(_CODE_RE.match(text))


RULE_FILES = ("icd_synonyms.tsv", "abbreviations.tsv", "icd_history.tsv")


def rules_hash(rules_dir: Path) -> str:
    """Hash of the rule files that shape the index and the query rewriting."""
    h = hashlib.sha256()
    for name in RULE_FILES:
        p = rules_dir / name
        h.update(name.encode())
        h.update(p.read_bytes() if p.is_file() else b"-")
    return h.hexdigest()[:16]


def package_fingerprint() -> tuple[str, str]:
    """``(package version, data year)`` of simple-icd-10-cm, read without importing (parsing) the package."""
    from importlib import metadata
    from importlib.util import find_spec

    version = metadata.version("simple-icd-10-cm")
    spec = find_spec("simple_icd_10_cm")
    year = ""
    if spec is not None and spec.origin:
        data_dir = Path(spec.origin).parent / "data"
        for p in sorted(data_dir.glob("code-list-*.txt")):
            m = re.search(r"(20\d\d)", p.name)
            if m:
                year = m.group(1)
    return version, year


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
    doc_text: list[str]
    doc_den: np.ndarray  # float32: sum of the entry's word weights (essential IDF + nonessential share)
    vocab: list[str]  # stems
    idf: np.ndarray  # float32 per stem
    post_ptr: np.ndarray  # int64, CSR pointers per stem
    post_doc: np.ndarray  # int32 entry ids
    post_w: np.ndarray  # float32 the stem's weight in that entry (negative: named as absent)
    words: list[str]  # raw words seen in the tabular list (for spelling correction)
    word_stem: np.ndarray  # int32 stem id per word
    classifiable: dict = field(default_factory=dict)  # Z80-Z87 code -> its "Conditions classifiable to" notes
    meta: dict = field(default_factory=dict)

    @property
    def n_docs(self) -> int:
        """Number of index entries."""
        return len(self.doc_code)


def _child_rank(code: str, desc: str, extension: bool) -> tuple[int, int]:
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


def build(settings: Settings, exclude: set[tuple[str, str]] | None = None, progress: bool = True) -> IndexData:
    """Build the index from the tabular list and the rules.

    Args:
        settings: Engine settings (``rules_dir``).
        exclude: ``(code, term.lower())`` pairs left out of the index (evaluation hold-outs).
        progress: Show a tqdm bar on stderr.

    Raises:
        EngineError: ``INDEX_ERROR`` when the package data cannot be read.
    """
    t0 = time.perf_counter()
    try:
        import simple_icd_10_cm as cm
    except Exception as exc:  # pragma: no cover - pinned requirement
        raise EngineError(ErrorCode.INDEX_ERROR, f"cannot load simple-icd-10-cm: {exc}") from exc
    exclude = exclude or set()

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

    # Default billable descendant of every code (itself when billable).
    default_leaf = np.arange(len(all_codes), dtype=np.int32)
    for i in range(len(all_codes) - 1, -1, -1):
        if billable[i]:
            continue
        kids = [k for k in cm.get_children(all_codes[i]) if k in pos]
        if not kids:
            continue
        best = min(kids, key=lambda k: (_child_rank(k, descriptions[pos[k]], cm.is_extended_subcategory(k)), pos[k]))
        default_leaf[i] = default_leaf[pos[best]]

    terms: list[tuple[int, int, str]] = []  # (code index, kind, text)
    seen: set[tuple[int, str]] = set()
    classifiable: dict[str, list[str]] = {}

    def add(ci: int, kind: int, text: str) -> None:
        text = text.strip()
        key = (ci, text.lower())
        if not text or key in seen or (all_codes[ci], text.lower()) in exclude:
            return
        if "conditions classifiable" in text.lower() or text.lower().startswith("conditions in "):
            classifiable.setdefault(all_codes[ci], []).append(text)
            return
        seen.add(key)
        terms.append((ci, kind, text))

    iterator: Iterable[int] = range(len(all_codes))
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="ICD index: terms", file=sys.stderr, mininterval=1.0, leave=False)
    for i in iterator:
        c = all_codes[i]
        add(i, KIND_DESCRIPTION, descriptions[i])
        if cm.is_extended_subcategory(c):
            continue
        for t in cm.get_inclusion_term(c):
            add(i, KIND_INCLUSION, t)
        for t in cm.get_includes(c):
            add(i, KIND_INCLUDES, t)
        for term, target in _xref_terms(cm.get_excludes1(c) + cm.get_excludes2(c)):
            if target in pos:
                add(pos[target], KIND_EXCLUDES_REF, term)
    for term, target in read_rules(settings.rules_dir / "icd_synonyms.tsv"):
        if is_code(target) and target in pos:
            add(pos[target], KIND_SYNONYM, term)

    # Tokenise, then document frequencies and weights (vectorised: Python loops over 1M postings are slow).
    vocab_ids: dict[str, int] = {}
    word_ids: dict[str, int] = {}
    flat_sid: list[int] = []
    flat_doc: list[int] = []
    flat_ess: list[int] = []
    for d, (_, _, text) in enumerate(terms):
        for s, flag in term_tokens(text):
            flat_sid.append(vocab_ids.setdefault(s, len(vocab_ids)))
            flat_doc.append(d)
            flat_ess.append(flag)
        for w in _WORD_RE.findall(text.lower()):
            if len(w) >= 3 and not w.isdigit() and w not in word_ids:
                word_ids[w] = len(word_ids)
    n_docs = len(terms)
    sid_arr = np.array(flat_sid, dtype=np.int64)
    doc_arr = np.array(flat_doc, dtype=np.int32)
    flag_arr = np.array(flat_ess, dtype=np.int8)
    df = np.bincount(sid_arr, minlength=len(vocab_ids)).astype(np.float64)
    idf = np.log((n_docs + 1) / (df + 0.5)).astype(np.float32)
    # Stored weight: IDF for essential words, a share of it for optional ones, negated for absent ones.
    factor = np.select([flag_arr == ESSENTIAL, flag_arr == ABSENT], [1.0, -NONESSENTIAL_WEIGHT], NONESSENTIAL_WEIGHT)
    weights = (idf[sid_arr] * factor).astype(np.float32)
    doc_den = np.bincount(doc_arr, weights=np.abs(weights), minlength=n_docs).astype(np.float32)
    order = np.argsort(sid_arr, kind="stable")
    post_doc = doc_arr[order]
    post_w = weights[order].astype(np.float32)
    post_ptr = np.zeros(len(vocab_ids) + 1, dtype=np.int64)
    np.cumsum(df.astype(np.int64), out=post_ptr[1:])

    vocab = [""] * len(vocab_ids)
    for s, i in vocab_ids.items():
        vocab[i] = s
    word_list = list(word_ids)
    word_stem = np.array([vocab_ids.get(stem(w), -1) for w in word_list], dtype=np.int32)
    version, year = package_fingerprint()
    meta = {
        "format": INDEX_FORMAT,
        "package": f"simple-icd-10-cm {version}",
        "year": year,
        "n_codes": len(all_codes),
        "n_billable": int(billable.sum()),
        "n_entries": n_docs,
        "build_s": round(time.perf_counter() - t0, 2),
        "excluded_terms": len(exclude),
    }
    return IndexData(
        codes=all_codes,
        descriptions=descriptions,
        billable=billable,
        extension=extension,
        parent=parent,
        default_leaf=default_leaf,
        doc_code=np.array([t[0] for t in terms], dtype=np.int32),
        doc_kind=np.array([t[1] for t in terms], dtype=np.int8),
        doc_text=[t[2] for t in terms],
        doc_den=doc_den,
        vocab=vocab,
        idf=idf,
        post_ptr=post_ptr,
        post_doc=post_doc,
        post_w=post_w,
        words=word_list,
        word_stem=word_stem,
        classifiable=classifiable,
        meta=meta,
    )


_ARRAYS = (
    "billable",
    "extension",
    "parent",
    "default_leaf",
    "doc_code",
    "doc_kind",
    "doc_den",
    "idf",
    "post_ptr",
    "post_doc",
    "post_w",
    "word_stem",
)
_LISTS = ("codes", "descriptions", "doc_text", "vocab", "words", "classifiable")


def cache_key(settings: Settings) -> str:
    """Cache folder name: index format, package version and data year, rules hash."""
    version, year = package_fingerprint()
    return f"icd-{INDEX_FORMAT}-{version}-{year}-{rules_hash(settings.rules_dir)}"


def save(data: IndexData, folder: Path) -> None:
    """Write the index to ``folder`` atomically (a temporary sibling renamed into place)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(folder.name + f".tmp{time.time_ns()}")
    tmp.mkdir(parents=True)
    for name in _ARRAYS:
        np.save(tmp / f"{name}.npy", getattr(data, name))
    (tmp / "lists.json").write_text(json.dumps({k: getattr(data, k) for k in _LISTS}), encoding="utf-8")
    (tmp / "meta.json").write_text(json.dumps(data.meta, indent=1), encoding="utf-8")
    try:
        tmp.rename(folder)
    except OSError:
        # Another process finished first; its copy is equivalent.
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def load_folder(folder: Path) -> IndexData:
    """Load a saved index (arrays memory-mapped).

    Raises:
        EngineError: ``INDEX_ERROR`` when files are missing or unreadable.
    """
    try:
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in _ARRAYS}
        lists = json.loads((folder / "lists.json").read_text(encoding="utf-8"))
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EngineError(ErrorCode.INDEX_ERROR, f"cannot read ICD index in {folder}: {exc}") from exc
    return IndexData(**arrays, **{k: lists[k] for k in _LISTS}, meta=meta)


def load_or_build(settings: Settings, progress: bool = True) -> tuple[IndexData, bool]:
    """The cached index for these settings, building and caching it first when needed.

    Returns:
        ``(index, built)`` where ``built`` says whether this call built it.
    """
    folder = Path(settings.cache_dir) / cache_key(settings)
    if (folder / "meta.json").is_file():
        try:
            return load_folder(folder), False
        except EngineError:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
    data = build(settings, progress=progress)
    try:
        save(data, folder)
    except OSError as exc:
        sys.stderr.write(f"warning: could not cache the ICD index in {folder}: {exc}\n")
        return data, True
    _remove_stale(folder)
    return load_folder(folder), True


def _remove_stale(current: Path) -> None:
    """Delete complete indexes of other keys (older rules or package data) so the cache does not grow forever.

    A process that still has one memory-mapped keeps reading it (the files live until it closes them).
    """
    import shutil

    for other in current.parent.glob("icd-*"):
        if other != current and (other / "meta.json").is_file() and ".tmp" not in other.name:
            shutil.rmtree(other, ignore_errors=True)
