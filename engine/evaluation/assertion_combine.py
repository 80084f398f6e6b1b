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
GATES = ("any", "uncued", "cued")
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
            gold, rules, probs, cues = [], [], [], []
            for doc in load_docs(name, data_dir, part):
                spans = [(i.start, i.end) for i in doc.items]
                detected = sections.detect(doc.text)
                rules += [set(j.traits) for j in stage.judge(doc.text, spans, detected)]
                items = stage.model_inputs(doc.text, spans, detected)
                probs += model.predict(items)
                cues += [sentence_cues(stage, item) for item in items]
                gold += [set(i.gold) & set(TRAITS) for i in doc.items]
            out[f"{name.rsplit('/', 1)[-1]} [{part}]"] = {"gold": gold, "rules": rules, "probs": probs, "cues": cues}
            print(f"{name}: {len(gold)} findings", file=sys.stderr, flush=True)
    return out


def sentence_cues(stage: Any, item: tuple) -> set[str]:
    """Traits a rule cue in the finding's sentence (or its section) could give, whatever its scope."""
    return stage.sentence_cues(item[0], item[3]) | ({stage.section_traits.get(item[4] or "")} - {None})


def fill_in(rules: list[set[str]], probs: list[dict[str, float]], fill: dict[str, float],
            cues: list[set[str]] | None = None, gate: str = "any") -> list[set[str]]:
    """The combined traits: the rules' plus each ``fill`` trait the model is sure of (not on negated/family).

    ``gate`` (with ``cues``, the traits a rule cue in each finding's sentence or section could give) narrows where
    the model may add a trait: ``uncued`` only where no cue of that trait is there (where one is, the rules weighed
    it and their "no" stands), ``cued`` only where one is (the model judges the cue's scope; few findings, so
    cheap), ``any`` everywhere (see :func:`engine.assertion_learned.gate_allows`).
    """
    from engine.assertion_learned import gate_allows

    out = []
    for k, (r, p) in enumerate(zip(rules, probs, strict=True)):
        traits = set(r)
        if not {"negated", "family"} & traits:
            cue = cues[k] if cues is not None else set()
            traits |= {t for t, th in fill.items() if p[t] >= th and gate_allows(gate, t, cue)}
        out.append(traits)
    return out


def _scores(gold: list[set[str]], pred: list[set[str]]) -> dict[str, Any]:
    from engine.evaluation.assertion_scoring import score, score_assertion

    out: dict[str, Any] = {t: score(gold, pred, t) for t in TRAITS if any(t in g for g in gold)}
    out["assertion"] = score_assertion(gold, pred)
    return out


def choose(sets: dict[str, dict[str, Any]], gate: str = "any") -> tuple[dict[str, float], dict[str, Any]]:
    """The ``fill`` thresholds (see the module docs) and the dev scores of rules, learned and combined.

    Args:
        sets: What :func:`collect` gives.
        gate: ``any``, ``uncued`` or ``cued``: where the model may add a trait (see :func:`fill_in`).
    """

    def combine(data: dict[str, Any], fill: dict[str, float]) -> list[set[str]]:
        return fill_in(data["rules"], data["probs"], fill, data.get("cues"), gate)

    fill: dict[str, float] = {}
    for trait in FILLABLE:
        best, best_gain = None, 0.0
        for th in THRESHOLDS:
            trial = {**fill, trait: th}
            gain, ok = 0.0, True
            for name, data in sets.items():
                base = _scores(data["gold"], combine(data, fill))
                new = _scores(data["gold"], combine(data, trial))
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
            "combined": _scores(data["gold"], combine(data, fill)),
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


def _scored_share(sets: dict[str, dict[str, Any]], fill: dict[str, float], gate: str) -> str:
    """How many findings the model must score under ``fill`` and ``gate`` (the cost of the combination)."""
    from engine.assertion_learned import needs_model

    total = scored = 0
    for data in sets.values():
        for rules, cue in zip(data["rules"], data["cues"], strict=True):
            total += 1
            scored += needs_model(rules, cue, fill, gate)
    return f"model scores {scored} of {total} findings ({scored / max(total, 1):.1%})"


def _load_sets(path: Path) -> dict[str, dict[str, Any]]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {name: {k: [set(x) for x in v] if k in {"gold", "rules", "cues"} else v for k, v in data.items()}
            for name, data in raw.items()}


def _save_sets(sets: dict[str, dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    plain = {name: {k: [sorted(x) for x in v] if k in {"gold", "rules", "cues"} else v for k, v in data.items()}
             for name, data in sets.items()}
    path.write_text(json.dumps(plain), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine.evaluation.assertion_combine``: print the comparison and the chosen ``fill``."""
    parser = argparse.ArgumentParser(prog="python -m engine.evaluation.assertion_combine",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="the trained assertion model folder")
    parser.add_argument("--data", type=Path, default=None, help="shared data folder (default: Settings().data_dir)")
    parser.add_argument("--gate", choices=[*GATES, "all"], default="all",
                        help="where the model may add a trait (all: compare the gates; --write stores the best)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="JSON of the collected dev judgements: read when present, else written")
    parser.add_argument("--write", action="store_true", help="store combine.fill and metrics.json in the folder")
    args = parser.parse_args(list(argv if argv is not None else sys.argv[1:]))
    import torch

    torch.set_num_threads(1)
    settings = Settings(device="cpu")
    if args.cache is not None and args.cache.is_file():
        sets = _load_sets(args.cache)
    else:
        sets = collect(Path(args.data or settings.data_dir), args.model, settings)
        if args.cache is not None:
            _save_sets(sets, args.cache)
    best: tuple[float, str, dict[str, float], dict[str, Any]] | None = None
    for gate in (GATES if args.gate == "all" else [args.gate]):
        fill, metrics = choose(sets, gate)
        gain = sum(e["combined"][t]["f1"] - e["rules"][t]["f1"] for e in metrics.values() for t in e["rules"]
                   if t != "assertion")
        print(f"== gate {gate}: combine.fill = {json.dumps(fill)}  (summed dev F1 gain {gain:+.4f}); "
              f"{_scored_share(sets, fill, gate)}")
        sys.stdout.write(_table(metrics))
        if best is None or gain > best[0] + 1e-9:
            best = (gain, gate, fill, metrics)
    assert best is not None
    _, gate, fill, metrics = best
    print(f"chosen: gate {gate}, combine.fill = {json.dumps(fill)}")
    if args.write:
        config_path = args.model / "config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["combine"] = {"fill": fill, "gate": gate,
                             "chosen_on": "dev split (engine.evaluation.assertion.DEV_SPLIT)"}
        config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (args.model / "metrics.json").write_text(
            json.dumps({"dev": metrics, "fill": fill, "gate": gate}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
