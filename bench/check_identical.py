"""Proves a refactor left ``analyze`` unchanged: digests its output on the first N shared MTSamples reports.

Runs ``python -m engine analyze`` (the public command, so note reading is exercised too: one file per note) on
the first ``--limit`` reports of ``mtsamples/`` sorted by file name, drops ``timings_ms`` (the only field that may
vary between runs), and hashes each output line (JSON with sorted keys). ``--write FILE`` saves the per-note
digests; ``--compare FILE`` checks them against a saved file and exits 1 on any difference, naming the notes.
Run it once before a change (``--write``), once after (``--compare``); ``--repo`` runs another checkout (the
baseline)::

    .venv/bin/python bench/check_identical.py --write /work/arch_ref.json
    .venv/bin/python bench/check_identical.py --compare /work/arch_ref.json

Data: ``--data DIR`` or ``CLINICAL_DATA_DIR`` (default ``../shared/data``); the reports are read there, never copied.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def report_files(data_dir: Path, limit: int) -> list[Path]:
    """The first ``limit`` MTSamples reports by file name."""
    folder = data_dir / "mtsamples"
    if not folder.is_dir():
        raise SystemExit(f"no MTSamples reports at {folder} (give --data or CLINICAL_DATA_DIR)")
    return sorted(folder.glob("*.txt"), key=lambda p: p.name)[:limit]


def run_analyze(files: list[Path], repo: Path) -> list[dict[str, Any]]:
    """One ``python -m engine analyze`` process over ``files`` as arguments; ids become the bare file names."""
    done = subprocess.run(
        [sys.executable, "-m", "engine", "analyze", "--device", "cpu", *map(str, files)],
        cwd=repo, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"analyze exited {done.returncode}:\n{done.stderr[-2000:]}")
    results = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    for result in results:  # the path given depends on where the data lies, the file name does not
        result["id"] = Path(result["id"]).name
    return results


def digests(results: list[dict[str, Any]]) -> dict[str, str]:
    """``{note id: sha256 of its output without timings}``, plus ``"*"`` over all of them in order."""
    out: dict[str, str] = {}
    whole = hashlib.sha256()
    for result in results:
        result = {k: v for k, v in result.items() if k != "timings_ms"}
        line = json.dumps(result, sort_keys=True, ensure_ascii=False).encode("utf-8")
        out[str(result["id"])] = hashlib.sha256(line).hexdigest()
        whole.update(line + b"\n")
    out["*"] = whole.hexdigest()
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("CLINICAL_DATA_DIR", REPO.parent / "shared/data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose engine runs (default: this one)")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path, help="save the digests here")
    group.add_argument("--compare", type=Path, help="compare with digests saved here")
    parser.add_argument("--outputs", type=Path, help="also save the output lines here")
    args = parser.parse_args(argv)
    files = report_files(args.data, args.limit)
    began = time.perf_counter()
    results = run_analyze(files, args.repo)
    found = digests(results)
    if args.outputs:
        lines = (json.dumps({k: v for k, v in r.items() if k != "timings_ms"}, sort_keys=True) for r in results)
        args.outputs.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    entities = sum(len(r.get("entities", [])) for r in results)
    print(f"{len(results)} notes, {entities} entities, {time.perf_counter() - began:.0f} s; digest {found['*']}")
    if args.write:
        args.write.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {args.write}")
        return 0
    saved = json.loads(args.compare.read_text(encoding="utf-8"))
    differ = sorted(k for k in set(saved) | set(found) if k != "*" and saved.get(k) != found.get(k))
    if differ or saved.get("*") != found["*"]:
        print(f"DIFFERENT: {len(differ)} notes differ, e.g. {differ[:5]}")
        return 1
    print(f"identical to {args.compare} ({len(found) - 1} notes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
