"""``python -m engine evaluate deid``: ours vs Presidio's pattern recognizers on the dev sets, in one run.

The scoring is :mod:`engine.evaluation.deid`; this entry point lives in the training layer because the synthetic
dev split is built by the training data generator (:func:`engine.training.deid.build_examples`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.deid.spans import LABELS
from engine.evaluation import deid as _scoring
from engine.evaluation.deid import HANDWRITTEN, HANDWRITTEN2, finders, load_handwritten, score
from engine.settings import Settings


def _table(name: str, results: dict[str, dict]) -> str:
    lines = [f"## {name}", "", "| system | span recall | char precision | char recall | "
             + " | ".join(f"{lab} recall" for lab in LABELS) + " |", "|---" * (4 + len(LABELS)) + "|"]
    for system, res in results.items():
        per = res["per_label"]
        cells = [str(per.get(lab, {}).get("recall", "-")) for lab in LABELS]
        lines.append(f"| {system} | {res['span_recall']} | {res['char_precision']} | {res['char_recall']} | "
                     + " | ".join(cells) + " |")
    any_res = next(iter(results.values()))
    counts = ", ".join(f"{lab} {v['spans']}" for lab, v in any_res["per_label"].items() if v["spans"])
    return "\n".join([*lines, "", f"gold spans: {any_res['spans']} ({counts})", ""])


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m engine evaluate deid",
                                     description=__doc__ + "\n" + (_scoring.__doc__ or ""),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Settings().data_dir)
    parser.add_argument("--handwritten", type=Path, nargs="+", default=[HANDWRITTEN, HANDWRITTEN2])
    parser.add_argument("--model-dir", type=Path, default=None, help="tagger folder (default assets/models/deid)")
    parser.add_argument("--no-synthetic", action="store_true", help="hand-written set only")
    parser.add_argument("--no-presidio", action="store_true")
    parser.add_argument("--misses", type=Path, help="write our missed spans here")
    parser.add_argument("--json", type=Path, help="write all figures here")
    args = parser.parse_args(argv)
    systems = finders(Settings(), args.model_dir, presidio=not args.no_presidio)
    sets = {f"hand-written {path.stem}": load_handwritten(path) for path in args.handwritten}
    if not args.no_synthetic:
        from engine.training.deid import build_examples

        sets["synthetic dev"] = build_examples(args.data_dir)["dev"]
    report: dict[str, dict] = {}
    for set_name, examples in sets.items():
        report[set_name] = {system: score(examples, finder) for system, finder in systems.items()}
        print(_table(f"{set_name} ({len(examples)} notes)", report[set_name]))
    if args.misses:
        ours = next(iter(systems))
        args.misses.write_text("\n".join(m for s in report.values() for m in s[ours]["misses"]) + "\n")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
