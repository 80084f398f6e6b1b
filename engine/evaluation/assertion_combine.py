"""Choose how the learned assertion classifier joins the rules, on the dev split only, and record it in the model.

``python -m engine.evaluation.assertion_combine --model DIR [--data DIR] [--write]``

For every dev set (:data:`engine.evaluation.assertion.DEV_SPLIT`; the MTSamples ``test`` part is never read) the
rules judge each finding once and the classifier scores it once. For each of ``hypothetical``, ``historical`` and
``possible`` the combination may let the model add the trait where the rules left it out (never to a finding the
rules negated or gave to a relative, as :class:`engine.assertion_learned.CombinedAssertionStage` does), at one of
:data:`THRESHOLDS`. A threshold is kept only when, on *every* dev set, neither that trait's F1 nor the one-word
assertion accuracy (on the sets that annotate all five traits) falls below the rules'; among those the one with
the highest summed F1 gain wins, and a trait with no such threshold (or no gain) is not filled. ``--write`` stores
the choice as ``combine.fill`` in the folder's ``config.json`` and the dev scores of rules, learned (probability
>= 0.5) and combined in ``metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.settings import Settings
from engine.types import TRAITS

FILLABLE = ("hypothetical", "historical", "possible")
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
FULL_SETS = ("mts-", "clinical_blind")
"""Dev sets whose gold annotates all five traits (the one-word assertion is scored on these)."""


def collect(data_dir: Path, folder: Path, settings: Settings) -> dict[str, dict[str, Any]]:
    """Gold traits, rule traits and model probabilities of every finding in every dev set."""
    from engine.assertion import load_rules
    from engine.assertion_learned import LearnedAssertion
    from engine.backbone import resolve_device
    from engine.evaluation.assertion import DEV_SPLIT, load_docs
    from engine.sections import load as load_sections

    stage, sections = load_rules(settings), load_sections(settings)
    model = LearnedAssertion(folder, resolve_device(settings.device))
    out: dict[str, dict[str, Any]] = {}
    for names, part in DEV_SPLIT:
        for name in names:
            gold, rules, probs = [], [], []
            for doc in load_docs(name, data_dir, part):
                spans = [(i.start, i.end) for i in doc.items]
                detected = sections.detect(doc.text)
                rules += [set(j.traits) for j in stage.judge(doc.text, spans, detected)]
                probs += model.predict(stage.model_inputs(doc.text, spans, detected))
                gold += [set(i.gold) & set(TRAITS) for i in doc.items]
            out[f"{name.rsplit('/', 1)[-1]} [{part}]"] = {"gold": gold, "rules": rules, "probs": probs}
            print(f"{name}: {len(gold)} findings", file=sys.stderr, flush=True)
    return out


def fill_in(rules: list[set[str]], probs: list[dict[str, float]], fill: dict[str, float]) -> list[set[str]]:
    """The combined traits: the rules' plus each ``fill`` trait the model is sure of (not on negated/family)."""
    out = []
    for r, p in zip(rules, probs, strict=True):
        traits = set(r)
        if not {"negated", "family"} & traits:
            traits |= {t for t, th in fill.items() if p[t] >= th}
        out.append(traits)
    return out


def _scores(gold: list[set[str]], pred: list[set[str]]) -> dict[str, Any]:
    from engine.evaluation.assertion_scoring import score, score_assertion

    out: dict[str, Any] = {t: score(gold, pred, t) for t in TRAITS if any(t in g for g in gold)}
    out["assertion"] = score_assertion(gold, pred)
    return out


def choose(sets: dict[str, dict[str, Any]]) -> tuple[dict[str, float], dict[str, Any]]:
    """The ``fill`` thresholds (see the module docs) and the dev scores of rules, learned and combined."""
    fill: dict[str, float] = {}
    for trait in FILLABLE:
        best, best_gain = None, 0.0
        for th in THRESHOLDS:
            trial = {**fill, trait: th}
            gain, ok = 0.0, True
            for name, data in sets.items():
                base = _scores(data["gold"], fill_in(data["rules"], data["probs"], fill))
                new = _scores(data["gold"], fill_in(data["rules"], data["probs"], trial))
                if trait in base:
                    gain += new[trait]["f1"] - base[trait]["f1"]
                    ok &= new[trait]["f1"] >= base[trait]["f1"]
                if name.startswith(FULL_SETS):  # the corpora annotate only some traits: their "present" is not
                    ok &= new["assertion"]["accuracy"] >= base["assertion"]["accuracy"]
            if ok and gain > best_gain + 1e-9:
                best, best_gain = th, gain
        if best is not None:
            fill[trait] = best
    metrics: dict[str, Any] = {}
    for name, data in sets.items():
        learned = [{t for t, p in probs.items() if p >= 0.5} for probs in data["probs"]]
        metrics[name] = {
            "findings": len(data["gold"]),
            "rules": _scores(data["gold"], data["rules"]),
            "learned": _scores(data["gold"], learned),
            "combined": _scores(data["gold"], fill_in(data["rules"], data["probs"], fill)),
        }
    return fill, metrics


def _table(metrics: dict[str, Any]) -> str:
    lines = [f"{'dev set':34s} {'trait':13s} {'rules':>7s} {'learned':>8s} {'combined':>9s}  (F1; assertion: acc)"]
    for name, entry in metrics.items():
        for trait in entry["rules"]:
            key = "accuracy" if trait == "assertion" else "f1"
            row = [entry[s][trait][key] for s in ("rules", "learned", "combined")]
            lines.append(f"{name:34s} {trait:13s} {row[0]:7.4f} {row[1]:8.4f} {row[2]:9.4f}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine.evaluation.assertion_combine``: print the comparison and the chosen ``fill``."""
    parser = argparse.ArgumentParser(prog="python -m engine.evaluation.assertion_combine",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="the trained assertion model folder")
    parser.add_argument("--data", type=Path, default=None, help="shared data folder (default: Settings().data_dir)")
    parser.add_argument("--write", action="store_true", help="store combine.fill and metrics.json in the folder")
    args = parser.parse_args(list(argv if argv is not None else sys.argv[1:]))
    import torch

    torch.set_num_threads(1)
    settings = Settings(device="cpu")
    sets = collect(Path(args.data or settings.data_dir), args.model, settings)
    fill, metrics = choose(sets)
    sys.stdout.write(_table(metrics))
    print(f"combine.fill = {json.dumps(fill)}")
    if args.write:
        config_path = args.model / "config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["combine"] = {"fill": fill, "chosen_on": "dev split (engine.evaluation.assertion.DEV_SPLIT)"}
        config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (args.model / "metrics.json").write_text(json.dumps({"dev": metrics, "fill": fill}, indent=2) + "\n",
                                                 encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
