"""Draw the F1-vs-ms curve of docs/ner.md from ``bench/bench_ner_models.py --dev --json`` output, as a plain SVG
(no plotting library: nothing to install).

    .venv/bin/python bench/plot_ner_curve.py runs/ner_models.json docs/ner_curve.svg
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

WIDTH, HEIGHT, PAD = 640, 400, 60


def points(payload: dict[str, Any]) -> list[tuple[str, float, float]]:
    """``(name, p50 ms per note, dev strict F1)`` of each model that was scored."""
    return [(name, row["ms"]["p50"], row["dev"]["f1"]) for name, row in payload["models"].items() if "dev" in row]


def svg(pts: list[tuple[str, float, float]], title: str) -> str:
    """An SVG scatter of the points, ms on x (from 0), F1 on y, each point labelled."""
    if not pts:
        raise SystemExit("no model with a dev score: run bench_ner_models.py with --dev")
    x_max = max(p[1] for p in pts) * 1.15
    y_lo = max(0.0, min(p[2] for p in pts) - 0.03)
    y_hi = min(1.0, max(p[2] for p in pts) + 0.03)

    def xy(ms: float, f1: float) -> tuple[float, float]:
        return (PAD + ms / x_max * (WIDTH - 2 * PAD),
                HEIGHT - PAD - (f1 - y_lo) / (y_hi - y_lo) * (HEIGHT - 2 * PAD))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" '
             'font-size="12">', '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
             f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="black"/>',
             f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="black"/>',
             f'<text x="{WIDTH / 2}" y="{HEIGHT - 15}" text-anchor="middle">ms per MTSamples note (p50, CPU)</text>',
             f'<text x="15" y="{HEIGHT / 2}" transform="rotate(-90 15 {HEIGHT / 2})" text-anchor="middle">'
             'MACCROBAT dev strict F1</text>']
    for k in range(5):
        ms, f1 = x_max * k / 4, y_lo + (y_hi - y_lo) * k / 4
        x, _ = xy(ms, y_lo)
        _, y = xy(0, f1)
        parts += [f'<text x="{x:.0f}" y="{HEIGHT - PAD + 16}" text-anchor="middle">{ms:.0f}</text>',
                  f'<text x="{PAD - 6}" y="{y + 4:.0f}" text-anchor="end">{f1:.3f}</text>']
    for name, ms, f1 in pts:
        x, y = xy(ms, f1)
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#1f77b4"/>',
                  f'<text x="{x + 8:.1f}" y="{y - 6:.1f}">{name} ({f1:.3f}, {ms:.0f} ms)</text>']
    return "\n".join([*parts, "</svg>\n"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", help="bench_ner_models.py --json output")
    parser.add_argument("out", help="SVG file to write")
    args = parser.parse_args()
    payload = json.loads(Path(args.json).read_text(encoding="utf-8"))
    load = payload.get("load_average", [0.0])[0]
    Path(args.out).write_text(svg(points(payload), f"NER: F1 vs ms per note (load {load:.1f})"), encoding="utf-8")
    print(f"wrote {args.out}: " + ", ".join(f"{n} {f:.4f} @ {m:.0f} ms" for n, m, f in points(payload)))


if __name__ == "__main__":
    main()
