"""Issue 15's short regression notes (``tests/fixtures/coding/regression.jsonl``) scored per failure class.

Each row is a short note in our own wording and what a coder expects of the entities over given phrases (an
assertion, a code or code prefix, no code, no entity, the coding mention). :func:`check` lists a row's failed
expectations on ``analyze`` entity dicts (the contract's objects); ``tests/test_coding_regression.py`` runs it
row by row, ``python -m engine evaluate coding --regression`` prints the pass counts per class of today's engine
beside the character TF-IDF baseline (today's spans, every ``DIAG`` coded from its own text, assertion ignored).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.settings import REPO_ROOT

REGRESSION_FILE = REPO_ROOT / "tests" / "fixtures" / "coding" / "regression.jsonl"


def read_rows(path: Path = REGRESSION_FILE) -> list[dict[str, Any]]:
    """The regression rows (one JSON object a line)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _first(entity: dict[str, Any]) -> str:
    return entity["codes"][0]["code"]


def check(row: dict[str, Any], entities: Sequence[dict[str, Any]]) -> list[str]:
    """The failed expectations of one row on its note's entity dicts, as readable messages (empty when all hold)."""
    text, problems = row["text"], []
    for exp in row["expect"]:
        start = text.find(exp["phrase"])
        if start < 0:
            raise ValueError(f"fixture error: {exp['phrase']!r} not in {text!r}")
        end = start + len(exp["phrase"])
        over = [e for e in entities if e["start"] < end and start < e["end"]]
        diag = [e for e in over if e["label"] == "DIAG"]
        coded = [e for e in diag if e["codes"]]
        seen = [(e["text"], e.get("assertion"), [c["code"] for c in e["codes"]][:2]) for e in over]
        failed = {
            "absent": exp.get("absent") and over,
            "assertion": "assertion" in exp and not any(e.get("assertion") == exp["assertion"] for e in diag),
            "code": "code" in exp and not any(_first(e) == exp["code"] for e in coded),
            "code_prefix": "code_prefix" in exp and not any(_first(e).startswith(exp["code_prefix"]) for e in coded),
            "uncoded": exp.get("uncoded") and coded,
            "not_code_prefix": "not_code_prefix" in exp
            and any(_first(e).startswith(exp["not_code_prefix"]) for e in coded),
            "mention": "mention" in exp
            and not any((e.get("coding") or {}).get("text") == exp["mention"] for e in coded),
        }
        for key, bad in failed.items():
            if bad:
                problems.append(f"{exp['phrase']!r}: expected {key} {exp.get(key)!r}, got {seen}")
    return problems


def tfidf_entities(coder: Any, entities: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The baseline's view of a note: the same spans, every ``DIAG`` coded by ``coder`` from its own text."""
    out = []
    for e in entities:
        code = coder.code(e["text"]) if e["label"] == "DIAG" else None
        out.append({**e, "assertion": "present", "coding": None, "codes": [{"code": code}] if code else []})
    return out


def regression_table(pipeline: Any, coder: Any | None, rows: Sequence[dict[str, Any]] | None = None) -> str:
    """Rows passed per failure class: today's engine, and the TF-IDF baseline when ``coder`` is given."""
    rows = list(rows if rows is not None else read_rows())
    results = [r.to_dict()["entities"] for r in pipeline.analyze_many([(row["id"], row["text"]) for row in rows])]
    systems = {"today": results}
    if coder is not None:
        systems["char TF-IDF, all DIAG"] = [tfidf_entities(coder, ents) for ents in results]
    total = Counter(row["class"] for row in rows)
    lines = [f"{'class':>6}{'rows':>6}  " + "".join(f"{name:>24}" for name in systems)]
    passed = {name: Counter(row["class"] for row, ents in zip(rows, res, strict=True) if not check(row, ents))
              for name, res in systems.items()}
    for cls in [*sorted(total), "all"]:
        n = sum(total.values()) if cls == "all" else total[cls]
        cells = [sum(p.values()) if cls == "all" else p[cls] for p in passed.values()]
        lines.append(f"{cls!s:>6}{n:>6}  " + "".join(f"{c:>24}" for c in cells))
    return "\n".join(lines)
