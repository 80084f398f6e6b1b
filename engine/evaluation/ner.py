"""NER evaluation: strict entity-level scores, an error breakdown, calibration, and a dictionary baseline.

``python -m engine evaluate ner`` scores a model folder on annotated documents (by default the MACCROBAT dev
reports the model was not trained on) side by side with a longest-match gazetteer built from the training spans.

Scores are strict: a prediction is correct only with the gold ``(start, end, label)`` exactly. Wrong predictions and
missed gold spans are broken down as ``type`` (same span, other label), ``boundary`` (overlap, same label),
``boundary_type`` (overlap, other label), ``spurious`` (overlaps no gold span) and ``missed`` (a gold span that no
prediction touches). ``ece`` is the expected calibration error of entity confidences against strict correctness
(10 equal-width bins).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from engine.corpora.document import Document, GoldSpan, split_documents
from engine.types import LABELS, Span

TOKEN_RE = re.compile(r"\w+|[^\w\s]")


class Predictor(Protocol):
    """Anything with the NER stage's ``predict``."""

    def predict(self, texts: Sequence[str]) -> list[list[Span]]: ...


def _prf(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "tp": tp, "fp": fp, "fn": fn}


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """Weighted mean gap between confidence and accuracy over equal-width confidence bins."""
    if not confidences:
        return 0.0
    totals = [[0, 0.0, 0.0] for _ in range(bins)]  # count, sum confidence, sum correct
    for conf, ok in zip(confidences, correct, strict=True):
        b = min(int(conf * bins), bins - 1)
        totals[b][0] += 1
        totals[b][1] += conf
        totals[b][2] += float(ok)
    n = len(confidences)
    return round(sum(abs(s_ok - s_conf) / n for _, s_conf, s_ok in totals), 4)


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score(gold: Sequence[Sequence[GoldSpan]], predicted: Sequence[Sequence[Span]]) -> dict[str, Any]:
    """Strict entity-level scores of predictions against gold spans, document by document.

    Args:
        gold: Per document, gold ``(start, end, label)`` spans.
        predicted: Per document, predicted spans.

    Returns:
        ``{"overall": P/R/F1, "per_type": {label: P/R/F1}, "errors": {kind: count}, "ece": float,
        "n_gold": int, "n_pred": int}``.
    """
    counts = {label: Counter() for label in LABELS}
    errors: Counter[str] = Counter({k: 0 for k in ("boundary", "type", "boundary_type", "missed", "spurious")})
    confidences: list[float] = []
    correct: list[bool] = []
    for gold_spans, pred_spans in zip(gold, predicted, strict=True):
        gold_set = {(s, e, lab) for s, e, lab in gold_spans}
        pred_set = {(p.start, p.end, p.label) for p in pred_spans}
        for p in pred_spans:
            ok = (p.start, p.end, p.label) in gold_set
            confidences.append(min(max(float(p.score), 0.0), 1.0))
            correct.append(ok)
        for s, e, lab in gold_set:
            counts[lab]["tp" if (s, e, lab) in pred_set else "fn"] += 1
        for _s, _e, lab in pred_set - gold_set:
            counts[lab]["fp"] += 1
        un_gold = gold_set - pred_set
        for s, e, lab in pred_set - gold_set:
            if any((gs, ge) == (s, e) for gs, ge, _ in un_gold):
                errors["type"] += 1
            elif any(_overlaps((s, e), (gs, ge)) and gl == lab for gs, ge, gl in un_gold):
                errors["boundary"] += 1
            elif any(_overlaps((s, e), (gs, ge)) for gs, ge, _ in un_gold):
                errors["boundary_type"] += 1
            else:
                errors["spurious"] += 1
        for gs, ge, _ in un_gold:
            if not any(_overlaps((gs, ge), (ps, pe)) for ps, pe, _ in pred_set):
                errors["missed"] += 1
    total = Counter()
    for c in counts.values():
        total.update(c)
    return {
        "overall": _prf(total["tp"], total["fp"], total["fn"]),
        "per_type": {label: _prf(c["tp"], c["fp"], c["fn"]) for label, c in counts.items()},
        "errors": dict(errors),
        "ece": expected_calibration_error(confidences, correct),
        "n_gold": total["tp"] + total["fn"],
        "n_pred": total["tp"] + total["fp"],
    }


def _doc_counts(gold: Sequence[Sequence[GoldSpan]], predicted: Sequence[Sequence[Span]]) -> list[tuple[int, int, int]]:
    """Strict ``(tp, fp, fn)`` of each document."""
    out = []
    for gold_spans, pred_spans in zip(gold, predicted, strict=True):
        g = {(s, e, lab) for s, e, lab in gold_spans}
        p = {(x.start, x.end, x.label) for x in pred_spans}
        out.append((len(g & p), len(p - g), len(g - p)))
    return out


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def paired_bootstrap(
    gold: Sequence[Sequence[GoldSpan]],
    predicted_a: Sequence[Sequence[Span]],
    predicted_b: Sequence[Sequence[Span]],
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """Strict F1 of ``a`` minus ``b`` with a 95% interval from resampling documents (the same draws for both).

    The documents, not the entities, are the unit that must generalise: entities of one report are not
    independent, so this interval is wider (and more honest) than one over entities.

    Returns:
        ``{"diff", "low", "high", "p_a_not_better"}``: the observed difference, the 2.5th and 97.5th percentiles
        of the resampled differences, and the share of resamples where ``a`` is not better than ``b``.
    """
    import random

    a, b = _doc_counts(gold, predicted_a), _doc_counts(gold, predicted_b)
    rng = random.Random(seed)
    n = len(a)
    diffs = []
    for _ in range(resamples):
        pick = [rng.randrange(n) for _ in range(n)]
        ta = [sum(a[i][k] for i in pick) for k in range(3)]
        tb = [sum(b[i][k] for i in pick) for k in range(3)]
        diffs.append(_f1(*ta) - _f1(*tb))
    diffs.sort()
    observed = _f1(*(sum(c[k] for c in a) for k in range(3))) - _f1(*(sum(c[k] for c in b) for k in range(3)))
    return {
        "diff": round(observed, 4),
        "low": round(diffs[int(0.025 * resamples)], 4),
        "high": round(diffs[min(resamples - 1, int(0.975 * resamples))], 4),
        "p_a_not_better": round(sum(d <= 0 for d in diffs) / resamples, 4),
    }


def evaluate_model(stage: Predictor, documents: Sequence[Document]) -> dict[str, Any]:
    """Run ``stage`` on the documents' texts and :func:`score` it (the retraining gate uses this too)."""
    predicted = stage.predict([d.text for d in documents])
    result = score([d.spans for d in documents], predicted)
    result["n_docs"] = len(documents)
    return result


TEMPERATURES: tuple[float, ...] = (1.0, 1.5, 2.0, 2.5, 2.75, 3.0, 3.25, 3.5, 4.0, 5.0)


def fit_temperature(stage: Any, documents: Sequence[Document]) -> dict[str, Any]:
    """Fit the confidence temperature of a :class:`~engine.ner.NerStage` to minimise ECE on ``documents``.

    The decode (hence P/R/F1) does not depend on it. Besides the fitted value, a two-fold estimate (fit on the even
    documents, measure on the odd ones and the reverse) says how well it carries over to unseen notes.

    Returns:
        ``{"temperature", "ece_before", "ece_fitted", "ece_two_fold"}``.
    """
    from engine.ner import annotate, snap_to_words

    encodings = [stage.encode(d.text) for d in documents]
    probs = stage.token_probs(encodings)

    def ece_at(indices: Sequence[int], temperature: float) -> float:
        confidences: list[float] = []
        correct: list[bool] = []
        for i in indices:
            gold = set(documents[i].spans)
            spans = annotate(encodings[i], probs[i], stage.id2label, stage.decoder, temperature, stage.aggregate)
            for span in snap_to_words(documents[i].text, spans):
                confidences.append(span.score)
                correct.append((span.start, span.end, span.label) in gold)
        return expected_calibration_error(confidences, correct)

    everything = list(range(len(documents)))
    even, odd = everything[::2], everything[1::2]
    best = min(TEMPERATURES, key=lambda t: ece_at(everything, t))
    folds = [ece_at(held, min(TEMPERATURES, key=lambda t: ece_at(fit, t))) for fit, held in ((even, odd), (odd, even))]
    return {
        "temperature": best,
        "ece_before": ece_at(everything, 1.0),
        "ece_fitted": ece_at(everything, best),
        "ece_two_fold": round(sum(folds) / len(folds), 4) if odd else None,
    }


def _tokens(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group().lower()) for m in TOKEN_RE.finditer(text)]


class Gazetteer:
    """Longest-match dictionary baseline built from training spans.

    Each annotated surface form (lower-cased token sequence) gets its most frequent label; its confidence is how
    often that label was annotated where the form occurs in the training texts. Forms annotated less often than
    ``min_precision`` are left out.
    """

    def __init__(self, documents: Sequence[Document], min_precision: float = 0.3) -> None:
        labels: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
        for doc in documents:
            for s, e, lab in doc.spans:
                key = tuple(t for _, _, t in _tokens(doc.text[s:e]))
                if key:
                    labels[key][lab] += 1
        self.max_len = max((len(k) for k in labels), default=0)
        occurrences: Counter[tuple[str, ...]] = Counter()
        for doc in documents:
            toks = [t for _, _, t in _tokens(doc.text)]
            for i in range(len(toks)):
                for n in range(1, min(self.max_len, len(toks) - i) + 1):
                    key = tuple(toks[i : i + n])
                    if key in labels:
                        occurrences[key] += 1
        self.entries: dict[tuple[str, ...], tuple[str, float]] = {}
        for key, counter in labels.items():
            label, count = counter.most_common(1)[0]
            precision = min(1.0, count / max(occurrences[key], 1))
            if precision >= min_precision:
                self.entries[key] = (label, precision)

    def predict(self, texts: Sequence[str]) -> list[list[Span]]:
        """Greedy left-to-right longest matches of the dictionary's forms."""
        out: list[list[Span]] = []
        for text in texts:
            toks = _tokens(text)
            spans: list[Span] = []
            i = 0
            while i < len(toks):
                for n in range(min(self.max_len, len(toks) - i), 0, -1):
                    hit = self.entries.get(tuple(t for _, _, t in toks[i : i + n]))
                    if hit:
                        spans.append(Span(toks[i][0], toks[i + n - 1][1], hit[0], hit[1]))
                        i += n
                        break
                else:
                    i += 1
            out.append(spans)
        return out


def format_table(results: dict[str, dict[str, Any]]) -> str:
    """Side-by-side text table of several systems' scores (columns: systems)."""
    names = list(results)
    width = max(14, *(len(n) + 2 for n in names))
    head = f"{'':<22}" + "".join(f"{n:>{width}}" for n in names)
    lines = [head, "-" * len(head)]

    def row(title: str, values: list[str]) -> None:
        lines.append(f"{title:<22}" + "".join(f"{v:>{width}}" for v in values))

    for metric in ("precision", "recall", "f1"):
        row(f"overall {metric}", [f"{results[n]['overall'][metric]:.4f}" for n in names])
    for label in LABELS:
        row(f"{label} P/R/F1", [
            "{precision:.2f}/{recall:.2f}/{f1:.2f}".format(**results[n]["per_type"][label]) for n in names
        ])
    for kind in ("boundary", "type", "boundary_type", "missed", "spurious"):
        row(f"errors: {kind}", [str(results[n]["errors"][kind]) for n in names])
    row("ECE", [f"{results[n]['ece']:.4f}" for n in names])
    row("gold / predicted", [f"{results[n]['n_gold']}/{results[n]['n_pred']}" for n in names])
    return "\n".join(lines)


class WithHistory:
    """The NER stage followed by the history backfill, as :meth:`engine.pipeline.Pipeline.analyze_many` runs them."""

    def __init__(self, stage: Any, settings: Any) -> None:
        from engine.registry import load_stage

        self.stage = stage
        self.history = load_stage("history", settings)
        self.icd = load_stage("icd", settings)

    def predict(self, texts: Sequence[str]) -> list[list[Span]]:
        return [
            self.history.add(text, spans, self.icd)
            for text, spans in zip(texts, self.stage.predict(texts), strict=True)
        ]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine evaluate ner``: score a NER model folder and the dictionary baseline side by side."""
    from engine.corpora.specs import load_data_specs
    from engine.ner import load_folder
    from engine.settings import Settings

    settings = Settings()
    parser = argparse.ArgumentParser(prog="python -m engine evaluate ner", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="NER model folder (default: <model-dir>/ner)")
    parser.add_argument("--model-dir", help="model set folder (default: the committed one)")
    parser.add_argument(
        "--data",
        action="append",
        help="FORMAT:PATH[:LABELMAP] as for training (default: brat:<data_dir>/maccrobat:maccrobat)",
    )
    parser.add_argument(
        "--split", choices=["dev", "train", "all"], default="dev",
        help="which documents to score: the deterministic dev split (default), the rest, or all",
    )
    parser.add_argument("--dev-count", type=int, help="dev documents (default: as recorded in the model config)")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--no-baseline", action="store_true", help="skip the dictionary baseline")
    parser.add_argument(
        "--history-backfill", action="store_true",
        help="also score the model plus the history backfill (engine/history.py), as `analyze` runs them",
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    model_dir = Path(args.model_dir) if args.model_dir else settings.model_dir
    folder = Path(args.model) if args.model else model_dir / "ner"
    stage = load_folder(folder, settings, device=args.device)
    training = stage.config.get("training", {})
    specs = args.data or [f"brat:{settings.data_dir / 'maccrobat'}:maccrobat"]
    documents = load_data_specs(specs[:1])
    dev_count = args.dev_count if args.dev_count is not None else training.get("n_dev_docs")
    train_docs, dev_docs = split_documents(documents, dev_count=dev_count)
    scored = {"dev": dev_docs, "train": train_docs, "all": documents}[args.split]
    if not scored:
        sys.stderr.write("error: no documents to evaluate in that split\n")
        return 2
    results: dict[str, dict[str, Any]] = {f"model {stage.version}": evaluate_model(stage, scored)}
    if args.history_backfill:
        results[f"model {stage.version} + history backfill"] = evaluate_model(WithHistory(stage, settings), scored)
    if not args.no_baseline:
        results["dictionary baseline"] = evaluate_model(Gazetteer(train_docs or documents), scored)
    print(f"NER evaluation on {len(scored)} documents ({args.split} split of {specs[0]}), strict span match")
    print(format_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0
