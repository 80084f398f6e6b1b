"""Evaluate de-identification: ``python -m engine evaluate deid``.

Scores, side by side in one run, our stage (patterns + cue rules + tagger), our patterns and cues without the
tagger, and Presidio's default pattern recognizers (no NLP model), on

- the hand-written dev sets (``tests/fixtures/deid/handwritten*.txt``, PHI marked ``[[LABEL|text]]``), and
- the synthetic dev split (:func:`engine.training.deid.build_examples`; held-out templates and MTSamples files).

Metrics: span recall (a gold span counts when every one of its characters is masked, whatever the label), per
gold label; character precision (masked characters that are gold PHI), per predicted label; character recall.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from engine.deid.spans import LABELS, PhiSpan
from engine.settings import REPO_ROOT, Settings

HANDWRITTEN = REPO_ROOT / "tests" / "fixtures" / "deid" / "handwritten.txt"
HANDWRITTEN2 = HANDWRITTEN.with_name("handwritten2.txt")
"""Written after the first set had been used for tuning, scored once on the final model (docs/deid.md)."""
_MARK = re.compile(r"\[\[([A-Z]+)\|([^\]]*)\]\]")
Finder = Callable[[str], list[PhiSpan]]


def parse_marked(note: str) -> dict[str, object]:
    """``{"text", "spans"}`` from a note whose PHI is marked ``[[LABEL|text]]``."""
    out, spans, pos, length = [], [], 0, 0
    for match in _MARK.finditer(note):
        out.append(note[pos:match.start()])
        length += match.start() - pos
        label, value = match.group(1), match.group(2)
        if label not in LABELS:
            raise ValueError(f"unknown PHI label {label!r} in {value!r}")
        spans.append([length, length + len(value), label])
        out.append(value)
        length += len(value)
        pos = match.end()
    out.append(note[pos:])
    return {"text": "".join(out), "spans": spans}


def load_handwritten(path: Path = HANDWRITTEN) -> list[dict[str, object]]:
    """The hand-written notes, each ``{"id", "text", "spans"}``."""
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    blocks = "\n".join(lines).split("\n===\n")
    return [{"id": f"handwritten:{i}", **parse_marked(b.strip("\n"))} for i, b in enumerate(blocks) if b.strip()]


def score(examples: Iterable[dict], finder: Finder) -> dict[str, object]:
    """Span recall per gold label and character precision per predicted label."""
    found, total = Counter(), Counter()
    masked_ok, masked_all = Counter(), Counter()
    gold_chars = gold_masked = 0
    misses: list[str] = []
    for ex in examples:
        text = ex["text"]
        gold = [0] * len(text)
        for start, end, _label in ex["spans"]:
            for i in range(start, end):
                gold[i] = 1
        mask = [""] * len(text)
        for span in finder(text):
            for i in range(span.start, span.end):
                mask[i] = span.label
        for start, end, label in ex["spans"]:
            total[label] += 1
            if all(mask[i] for i in range(start, end)):
                found[label] += 1
            elif len(misses) < 400:
                misses.append(f"{label}\t{text[start:end]!r}\t{text[max(0, start - 30):end + 30]!r}")
        for i, lab in enumerate(mask):
            if lab:
                masked_all[lab] += 1
                masked_ok[lab] += gold[i]
        gold_chars += sum(gold)
        gold_masked += sum(1 for i, g in enumerate(gold) if g and mask[i])
    per_label = {lab: {"spans": total[lab], "recall": _ratio(found[lab], total[lab]),
                       "masked_chars": masked_all[lab], "char_precision": _ratio(masked_ok[lab], masked_all[lab])}
                 for lab in LABELS if total[lab] or masked_all[lab]}
    return {
        "span_recall": _ratio(sum(found.values()), sum(total.values())),
        "char_precision": _ratio(sum(masked_ok.values()), sum(masked_all.values())),
        "char_recall": _ratio(gold_masked, gold_chars),
        "spans": sum(total.values()),
        "per_label": per_label,
        "misses": misses,
    }


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def finders(settings: Settings, model_dir: Path | None = None, presidio: bool = True) -> dict[str, Finder]:
    """The systems compared: ours, ours without the tagger, and Presidio's pattern recognizers when installed."""
    from engine.deid.stage import Deidentifier

    out: dict[str, Finder] = {}
    ours = Deidentifier(settings, model_dir=model_dir)
    out[f"ours ({ours.version})"] = ours.find
    out["ours, rules only"] = Deidentifier(settings, use_tagger=False).find
    if presidio:
        from engine.evaluation.deid_presidio import presidio_finder

        finder = presidio_finder()
        if finder is not None:
            out["presidio patterns"] = finder
    return out


def evaluate_model(dev: list[dict], settings: Settings, model_dir: Path) -> dict[str, object]:
    """metrics.json content for a freshly trained tagger: synthetic dev and hand-written dev, ours only."""
    from engine.deid.stage import Deidentifier

    find = Deidentifier(settings, model_dir=model_dir).find
    synthetic = score(dev, find)
    hand = score(load_handwritten(), find)
    strip = {k: v for k, v in synthetic.items() if k != "misses"}
    strip_hand = {k: v for k, v in hand.items() if k != "misses"}
    return {"synthetic_dev": strip, "handwritten_dev": strip_hand,
            "summary": {name: {k: m[k] for k in ("span_recall", "char_precision", "char_recall", "spans")}
                        for name, m in (("synthetic_dev", synthetic), ("handwritten_dev", hand))}}
