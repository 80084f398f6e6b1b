"""Score the ``code`` verb on hand-written encounter cases: exact code set, and exact order (issue #19).

Each line of ``bench_encounter_blind_cases.jsonl`` is a short note written from the guideline wording named in its
``rule``, the setting, and the code set a coder would submit in order (``expected``). The cases were written and
committed before the builder was first run on them; they are scored through the whole engine (NER, assertion,
ICD linker, Tabular notes on CPU), so a miss may be the NER's as well as the builder's.

    .venv/bin/python bench/bench_encounter_blind.py [--cases FILE] [--json OUT]

Printed: per case the expected and produced codes; then exact-set accuracy (same codes, any order), exact-order
accuracy (same codes in the same order) and, over the cases whose set is right, the share in the right order.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import emit_json, print_header, set_threads

CASES = Path(__file__).with_name("bench_encounter_blind_cases.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=str(CASES), help="JSON lines of {id, setting, text, expected}")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    set_threads(1)
    info = print_header("encounter code set: hand-written cases, exact set and order", device="cpu")
    from engine.encounter import code_note
    from engine.pipeline import load_pipeline

    cases = [json.loads(line) for line in Path(args.cases).read_text("utf-8").splitlines() if line.strip()]
    pipeline = load_pipeline(device="cpu")
    exact_set = exact_order = 0
    rows = []
    for case in cases:
        got = [c["code"] for c in code_note(pipeline, case["text"], case["id"], case["setting"])["codes"]]
        same_set, same_order = set(got) == set(case["expected"]), got == case["expected"]
        exact_set += same_set
        exact_order += same_order
        mark = "ok" if same_order else "set ok, order wrong" if same_set else "WRONG"
        print(f"{case['id']:<5} {mark:<20} expected {case['expected']} got {got}  ({case['rule']})")
        rows.append({"id": case["id"], "expected": case["expected"], "got": got, "set": same_set,
                     "order": same_order})
    n = len(cases)
    print(f"cases: {n}; exact set {exact_set}/{n} = {exact_set / n:.3f}; exact order {exact_order}/{n} = "
          f"{exact_order / n:.3f}; order right when the set is right {exact_order}/{exact_set}")
    emit_json(args.json, {"machine": info, "cases": n, "exact_set": exact_set / n, "exact_order": exact_order / n,
                          "rows": rows})


if __name__ == "__main__":
    main()
