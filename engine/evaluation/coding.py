"""``python -m engine evaluate coding``: the codes a coder would submit, per note, against the engine's.

The gold sets (``tests/fixtures/coding/*.jsonl``, see their README) name MTSamples reports of the shared data
folder by file and SHA-1 and list, per report, the codes a certified coder would submit (``codes``: one item per
condition, with equally good alternatives) and the codes that are not wrong but that a coder would not submit
(``acceptable``: integral symptoms, findings, status codes). The text is read from ``--notes DIR`` (default
``<data_dir>/mtsamples``); a missing report, or one whose text changed, is skipped with a message.

What the engine predicts for a note is the set of first codes of its ``DIAG`` entities (an entity shown with no
code, because it is negated, uncertain or below the confidence threshold, predicts nothing); when results carry
an ``encounter`` object (the encounter's code set), it is scored as a system of its own. Figures, micro-averaged
over the notes of each note type and overall:

- recall: gold conditions whose code (or an alternative) is predicted, over all gold conditions;
- precision: predicted codes that are a gold or acceptable code of the note, over all predicted codes;
- strict precision: the same with acceptable codes counted as errors (the coder's submitted set only);
- the same three at category level (the 3-character ICD-10-CM category) as a secondary figure.

Systems scored in the same run, on the same notes: today's engine (in process); the previous release, run from a
``git archive`` of ``--baseline REV`` in a subprocess with the same Python (or read from
``--baseline-predictions FILE``, written earlier by ``--save-predictions``); and a trivial baseline, a character
TF-IDF over the descriptions of all billable codes applied to every ``DIAG`` span of today's NER, unfiltered.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.settings import REPO_ROOT, Settings

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "coding"
SETS = {"dev": FIXTURES / "dev.jsonl", "blind": FIXTURES / "blind.jsonl"}
ENV_PASSED_OVER = ("CLINICAL_NLP_MODEL_DIR", "CLINICAL_NLP_RULES_DIR", "PYTHONPATH")
"""Variables not handed to the previous release's process: it must run its own models and rules."""


@dataclass(slots=True)
class GoldNote:
    """One coded report: ``codes`` is a list of code sets (one per condition), ``acceptable`` a flat set."""

    file: str
    sha1: str
    type: str
    setting: str
    codes: list[frozenset[str]]
    acceptable: frozenset[str]
    texts: list[str] = field(default_factory=list)


def text_sha1(text: str) -> str:
    """The short hash the gold files keep of a report's text (first 12 hex digits of the SHA-1 of its UTF-8)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def read_gold(path: Path) -> list[GoldNote]:
    """The coded reports of one gold file."""
    notes = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)
        notes.append(
            GoldNote(
                file=obj["file"],
                sha1=obj["sha1"],
                type=obj["type"],
                setting=obj["setting"],
                codes=[frozenset([c["code"], *c.get("alt", [])]) for c in obj["codes"]],
                acceptable=frozenset(x for c in obj.get("acceptable", []) for x in (c["code"], *c.get("alt", []))),
                texts=[c.get("text", "") for c in obj["codes"]],
            )
        )
    return notes


def read_texts(gold: Sequence[GoldNote], notes_dir: Path) -> tuple[list[tuple[GoldNote, str]], list[str]]:
    """``(note, text)`` for the reports present with the recorded hash, and a message per report skipped."""
    found, skipped = [], []
    for note in gold:
        path = notes_dir / note.file
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            skipped.append(f"{note.file}: absent from {notes_dir}")
            continue
        if text_sha1(text) != note.sha1:
            skipped.append(f"{note.file}: text changed (sha1 {text_sha1(text)}, gold coded {note.sha1})")
            continue
        found.append((note, text))
    return found, skipped


def predicted_codes(result: dict[str, Any], source: str = "entities") -> set[str]:
    """What an ``analyze`` result (a contract dict) codes: the first code of every coded ``DIAG`` entity, or
    (``source="encounter"``) the codes of its ``encounter`` object, the encounter's code set, when it has one."""
    if source == "encounter":
        return {c["code"] for c in (result.get("encounter") or {}).get("codes", [])}
    return {e["codes"][0]["code"] for e in result.get("entities", []) if e.get("label") == "DIAG" and e.get("codes")}


@dataclass(slots=True)
class Tally:
    """Counts behind precision and recall for a group of notes."""

    notes: int = 0
    gold: int = 0
    found: int = 0
    predicted: int = 0
    correct: int = 0
    correct_strict: int = 0

    def add(self, other: Tally) -> None:
        """Add another tally's counts to this one."""
        for name in ("notes", "gold", "found", "predicted", "correct", "correct_strict"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def figures(self) -> dict[str, float | int]:
        """Precision, strict precision, recall and the counts (precision 0 when nothing was predicted)."""
        p = self.predicted or 1
        return {
            "precision": self.correct / p,
            "precision_strict": self.correct_strict / p,
            "recall": self.found / (self.gold or 1),
            "notes": self.notes,
            "gold": self.gold,
            "predicted": self.predicted,
        }


def category(code: str) -> str:
    """The 3-character ICD-10-CM category of a code."""
    return code[:3]


def score_note(note: GoldNote, predicted: Iterable[str], level: str = "code") -> Tally:
    """The tally of one note at ``level`` ``"code"`` or ``"category"``."""
    key = (lambda c: c) if level == "code" else category
    pred = {key(c) for c in predicted}
    conditions = [{key(c) for c in cs} for cs in note.codes]
    submitted = set().union(*conditions) if conditions else set()
    allowed = submitted | {key(c) for c in note.acceptable}
    return Tally(
        notes=1,
        gold=len(conditions),
        found=sum(1 for cs in conditions if cs & pred),
        predicted=len(pred),
        correct=len(pred & allowed),
        correct_strict=len(pred & submitted),
    )


def score(notes: Sequence[GoldNote], predictions: Sequence[set[str]], level: str = "code") -> dict[str, Tally]:
    """Tallies per note type and ``"all"``."""
    out: dict[str, Tally] = defaultdict(Tally)
    for note, pred in zip(notes, predictions, strict=True):
        tally = score_note(note, pred, level)
        out[note.type].add(tally)
        out["all"].add(tally)
    return dict(out)


class TfidfCoder:
    """The trivial baseline: character TF-IDF (3-5-grams) over the descriptions of all billable codes."""

    def __init__(self) -> None:
        import simple_icd_10_cm as icd
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.codes = [c for c in icd.get_all_codes(True) if icd.is_leaf(c)]
        descriptions = [icd.get_description(c) for c in self.codes]
        self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True, sublinear_tf=True)
        self.matrix = self.vectorizer.fit_transform(descriptions).T.tocsr()

    def code(self, mention: str) -> str | None:
        """The best code for a mention, or ``None`` when it shares no n-gram with any description."""
        q = self.vectorizer.transform([mention])
        if q.nnz == 0:
            return None
        scores = (q @ self.matrix).toarray().ravel()
        return self.codes[int(scores.argmax())]


def tfidf_predictions(coder: TfidfCoder, results: Sequence[dict[str, Any]]) -> list[set[str]]:
    """The baseline's codes: one per ``DIAG`` entity of each result, whatever its assertion."""
    out = []
    for result in results:
        codes = {coder.code(e["text"]) for e in result["entities"] if e["label"] == "DIAG"}
        out.append({c for c in codes if c})
    return out


def release_tree(rev: str, cache: Path) -> Path:
    """A checkout of ``rev`` (``git archive``), kept under ``cache`` for the next run."""
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    if sha.returncode != 0:
        raise SystemExit(f"--baseline {rev}: not a commit of {REPO_ROOT} ({sha.stderr.strip()})")
    target = cache / sha.stdout.strip()[:12]
    if (target / "engine").is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        archive = Path(tmp) / "tree.tar"
        subprocess.run(["git", "archive", "-o", str(archive), sha.stdout.strip()], cwd=REPO_ROOT, check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(Path(tmp) / "tree", filter="data")
        (Path(tmp) / "tree").rename(target)
    return target


def run_release(tree: Path, texts: Sequence[tuple[str, str]], data_dir: Path) -> list[dict[str, Any]]:
    """``analyze`` results of the engine in ``tree`` for ``(id, text)`` pairs, via its command line on CPU."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_PASSED_OVER}
    env["CLINICAL_DATA_DIR"] = str(data_dir)
    lines = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in texts)
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "analyze", "--jsonl", "-", "--device", "cpu"],
        cwd=tree,
        env=env,
        input=lines,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"the release in {tree} failed (status {proc.returncode}):\n{proc.stderr[-2000:]}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def read_predictions(path: Path, notes: Sequence[GoldNote]) -> list[set[str]]:
    """Saved predictions (``{"file", "codes"}`` per line) in the order of ``notes``."""
    saved = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            saved[obj["file"]] = set(obj["codes"])
    missing = [n.file for n in notes if n.file not in saved]
    if missing:
        raise SystemExit(f"{path}: no predictions for {len(missing)} notes, e.g. {missing[0]}")
    return [saved[n.file] for n in notes]


def table(systems: dict[str, list[set[str]]], notes: Sequence[GoldNote]) -> str:
    """One table: per note type (and all), each system's code-level and category-level figures."""
    scored = {name: (score(notes, p, "code"), score(notes, p, "category")) for name, p in systems.items()}
    types = [*sorted({n.type for n in notes}), "all"]
    lines = [f"{'note type':<22}{'notes':>6}{'gold':>6}  {'system':<26}{'P':>7}{'P strict':>9}{'R':>7}"
             f"{'pred':>6}   {'cat P':>6}{'cat Ps':>7}{'cat R':>7}"]
    for t in types:
        for i, (name, (code_t, cat_t)) in enumerate(scored.items()):
            c, k = code_t[t].figures(), cat_t[t].figures()
            head = f"{t:<22}{c['notes']:>6}{c['gold']:>6}" if i == 0 else " " * 34
            lines.append(
                f"{head}  {name:<26}{c['precision']:>7.3f}{c['precision_strict']:>9.3f}{c['recall']:>7.3f}"
                f"{c['predicted']:>6}   {k['precision']:>6.3f}{k['precision_strict']:>7.3f}{k['recall']:>7.3f}"
            )
    return "\n".join(lines)


def errors(notes: Sequence[GoldNote], predictions: Sequence[set[str]]) -> str:
    """Per note: the gold conditions missed and the predicted codes that are neither gold nor acceptable."""
    out = []
    for note, pred in zip(notes, predictions, strict=True):
        missed = [f"{sorted(cs)[0] if len(cs) == 1 else '/'.join(sorted(cs))} ({text})"
                  for cs, text in zip(note.codes, note.texts, strict=True) if not cs & pred]
        allowed = set().union(*note.codes) | note.acceptable if note.codes else set(note.acceptable)
        wrong = sorted(pred - allowed)
        out.append(f"{note.file} [{note.type}]\n  missed: {'; '.join(missed) or '-'}")
        out.append(f"  wrong: {', '.join(wrong) or '-'}")
    return "\n".join(out)


def encounter_predictions(
    pipeline: Any, results: Sequence[dict[str, Any]], pairs: Sequence[tuple[GoldNote, str]]
) -> list[set[str]]:
    """The code set of each note's encounter (:mod:`engine.encounter`), built from its analysis in the note's gold
    setting: what ``code`` would submit, with symptoms integral to a coded diagnosis dropped (guideline I.B.5)."""
    from engine.encounter.service import analysis_from_dict, build_encounter

    out = []
    for result, (note, text) in zip(results, pairs, strict=True):
        encounter = build_encounter(pipeline, analysis_from_dict(result), text, note.setting).to_dict()
        out.append({c["code"] for c in encounter.get("codes", [])})
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line of ``python -m engine evaluate coding``."""
    parser = argparse.ArgumentParser(prog="python -m engine evaluate coding", description=__doc__.split("\n")[0])
    parser.add_argument("--set", choices=sorted(SETS), action="append", help="gold set(s) (default: dev)")
    parser.add_argument("--gold", type=Path, action="append", help="another gold file (JSON lines)")
    parser.add_argument("--notes", type=Path, help="folder of the MTSamples reports (default: <data_dir>/mtsamples)")
    parser.add_argument("--model-dir", help="model set of today's engine (default: the committed one)")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--baseline", metavar="REV", help="git revision of the previous release, e.g. e096102")
    parser.add_argument("--baseline-predictions", type=Path, help="the previous release's saved predictions")
    parser.add_argument("--save-predictions", type=Path, help="write today's predictions here (JSON lines)")
    parser.add_argument("--no-tfidf", action="store_true", help="skip the character TF-IDF baseline")
    parser.add_argument("--errors", action="store_true", help="list each note's missed and wrong codes (today)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--ner-dev", action="store_true",
        help="also score the spans analyze keeps on MACCROBAT dev, beside the NER model alone",
    )
    parser.add_argument(
        "--regression", action="store_true", help="also score the short regression notes per failure class"
    )
    parser.add_argument(
        "--sweep", action="store_true", help="also print precision/recall at each abstention threshold"
    )
    parser.add_argument(
        "--encounter", action="store_true",
        help="also score the encounter's code set (integral symptoms dropped, combinations; the gold setting)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; prints the table. Returns 0, or 1 when no gold report could be read."""
    args = parse_args(argv)
    settings = Settings()
    notes_dir = args.notes or settings.data_dir / "mtsamples"
    gold_files = [SETS[s] for s in (args.set or ([] if args.gold else ["dev"]))] + list(args.gold or [])
    gold = [n for path in gold_files for n in read_gold(path)]
    pairs, skipped = read_texts(gold, notes_dir)
    for message in skipped:
        sys.stderr.write(f"skipped: {message}\n")
    if not pairs:
        sys.stderr.write(f"no coded report could be read from {notes_dir}: nothing to evaluate\n")
        return 1
    notes = [n for n, _ in pairs]
    names = ", ".join(p.name for p in gold_files)
    print(f"gold: {names}; {len(notes)} reports from {notes_dir} ({len(skipped)} skipped)")

    from engine.pipeline import load_pipeline

    pipeline = load_pipeline(model_dir=args.model_dir, device=args.device)
    t0 = time.perf_counter()
    results = [r.to_dict() for r in pipeline.analyze_many([(n.file, t) for n, t in pairs])]
    print(f"today's engine: {len(results)} notes in {time.perf_counter() - t0:.1f} s")
    systems: dict[str, list[set[str]]] = {"today": [predicted_codes(r) for r in results]}
    if args.encounter:
        systems["today, encounter code set"] = encounter_predictions(pipeline, results, pairs)
    elif any(r.get("encounter") for r in results):
        systems["today, encounter code set"] = [predicted_codes(r, "encounter") for r in results]
    if args.baseline:
        t0 = time.perf_counter()
        tree = release_tree(args.baseline, REPO_ROOT / ".cache" / "coding-baseline")
        released = run_release(tree, [(n.file, t) for n, t in pairs], settings.data_dir)
        systems[f"release {args.baseline}"] = [predicted_codes(r) for r in released]
        print(f"release {args.baseline} ({tree}): {time.perf_counter() - t0:.1f} s")
    if args.baseline_predictions:
        systems[f"saved {args.baseline_predictions.name}"] = read_predictions(args.baseline_predictions, notes)
    if not args.no_tfidf:
        systems["char TF-IDF, all DIAG"] = tfidf_predictions(TfidfCoder(), results)
    if args.save_predictions:
        with args.save_predictions.open("w", encoding="utf-8") as fh:
            for note, pred in zip(notes, systems["today"], strict=True):
                fh.write(json.dumps({"file": note.file, "codes": sorted(pred)}) + "\n")
    print(table(systems, notes))
    if args.errors:
        print(errors(notes, systems["today"]))
    if args.sweep:
        from engine.evaluation.coding_threshold import sweep_table

        icd = pipeline.stage("icd")
        print(f"abstention threshold (settings.icd_min_score = {pipeline.settings.icd_min_score}), all notes:")
        confidence = getattr(icd, "confidence", float)
        print(sweep_table(notes, results, confidence, score, current=pipeline.settings.icd_min_score))
    if args.regression:
        from engine.evaluation.coding_regression import regression_table

        print("regression notes (tests/fixtures/coding/regression.jsonl), rows passed per failure class:")
        print(regression_table(pipeline, None if args.no_tfidf else TfidfCoder()))
    if args.ner_dev:
        from engine.evaluation.coding_spans import ner_dev_table

        print(ner_dev_table(pipeline))
    if args.json:
        figures = {name: {lvl: {t: tl.figures() for t, tl in score(notes, p, lvl).items()}
                          for lvl in ("code", "category")} for name, p in systems.items()}
        args.json.write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return 0
