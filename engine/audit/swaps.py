"""Demographic swap pairs: the same note with only the patient's sex, age or race/ethnicity changed.

Notes and values are data (``assets/audit/swap_templates.txt``, ``assets/audit/swap_values.tsv``). Each template
is rendered with the baseline of a dimension and with each other variant, every other slot at its default; both
are analysed and every difference is listed: an entity found in one and not the other, or found in both with
another assertion or other codes. Entities are matched by label and text outside the swapped words (offsets move
with the words' lengths); an entity that covers a swapped word is matched by label with the word itself masked,
so "52-year-old man" and "83-year-old man" are the same entity, and reported if one side has it and the other not.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.rules import rule_rows

SLOT_RE = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Rendered:
    """A rendered note and the character ranges its slot values fill."""

    text: str
    slots: tuple[tuple[int, int], ...]


def read_values(path: Path) -> dict[str, dict[str, dict[str, str]]]:
    """``{dimension: {variant: {slot: value}}}`` from ``swap_values.tsv``, variants in file order."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for _, fields in rule_rows(path, what="swap values file"):
        dimension, variant, slot = (f.strip() for f in fields[:3])
        value = fields[3].strip() if len(fields) > 3 else ""
        out.setdefault(dimension, {}).setdefault(variant, {})[slot] = value + " " if slot == "race" and value else value
    return out


def read_templates(path: Path) -> list[str]:
    """The note templates (blocks separated by ``---`` lines; ``#`` lines are comments)."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    blocks = "\n".join(lines).split("\n---\n")
    return [b.strip() for b in blocks if b.strip()]


def render(template: str, values: dict[str, str]) -> Rendered:
    """Fill the template's slots, recording where each value went."""
    parts, slots, pos = [], [], 0
    length = 0
    for match in SLOT_RE.finditer(template):
        literal = template[pos : match.start()]
        parts.append(literal)
        length += len(literal)
        value = values[match.group(1)]
        slots.append((length, length + len(value)))
        parts.append(value)
        length += len(value)
        pos = match.end()
    parts.append(template[pos:])
    return Rendered("".join(parts), tuple(slots))


def entity_keys(note: Rendered, result: dict[str, Any]) -> Counter[tuple[Any, ...]]:
    """Comparable keys of a result's entities: ``(label, text with swapped words masked, assertion, codes)``."""
    keys: Counter[tuple[Any, ...]] = Counter()
    for e in result["entities"]:
        text = note.text
        masked = []
        pos = e["start"]
        for start, end in note.slots:
            if start < e["end"] and e["start"] < end:
                masked.append(text[pos : max(pos, start)])
                masked.append("<swap>")
                pos = max(pos, end)
        masked.append(text[pos : e["end"]] if pos < e["end"] else "")
        codes = tuple(c["code"] for c in e.get("codes", [])[:1])
        keys[(e["label"], "".join(masked), e["assertion"], codes)] += 1
    return keys


def compare(base: Rendered, base_result: dict[str, Any], other: Rendered, other_result: dict[str, Any]
            ) -> list[dict[str, Any]]:
    """Every difference between two analyses of a swap pair (empty when they agree)."""
    a, b = entity_keys(base, base_result), entity_keys(other, other_result)
    diffs = []
    for key in sorted((a - b) + (b - a), key=str):
        label, text, assertion, codes = key
        side = "baseline only" if a[key] > b[key] else "variant only"
        twin = [k for k in (b if side == "baseline only" else a) if k[:2] == (label, text) and k not in
                (a if side == "baseline only" else b)]
        kind = "entity"
        if twin:
            kind = "assertion" if twin[0][2] != assertion else "codes"
        diffs.append({"kind": kind, "side": side, "label": label, "text": text, "assertion": assertion,
                      "codes": list(codes)})
    return diffs


def swap_pairs(templates: Sequence[str], values: dict[str, dict[str, dict[str, str]]]
               ) -> list[tuple[str, str, str, int, Rendered, Rendered]]:
    """``(dimension, baseline variant, variant, template index, baseline note, variant note)`` for every pair."""
    defaults = values["default"]["default"]
    pairs = []
    for dimension, variants in values.items():
        if dimension == "default":
            continue
        names = list(variants)
        for i, template in enumerate(templates):
            base = render(template, {**defaults, **variants[names[0]]})
            for name in names[1:]:
                pairs.append((dimension, names[0], name, i, base, render(template, {**defaults, **variants[name]})))
    return pairs


def run_swaps(pipeline: Any, templates: Sequence[str], values: dict[str, dict[str, dict[str, str]]]
              ) -> dict[str, Any]:
    """Analyse every swap pair and collect the differences.

    Returns:
        ``{"pairs": n, "pairs_differing": n, "by_dimension": {dimension: {"pairs", "differing", "differences"}},
        "differences": [{dimension, baseline, variant, template, kind, side, label, text, assertion, codes}]}``.
    """
    pairs = swap_pairs(templates, values)
    texts = sorted({p[4].text for p in pairs} | {p[5].text for p in pairs})
    results = {t: r.to_dict() for t, r in zip(texts, pipeline.analyze_many([(None, t) for t in texts]), strict=True)}
    differences, by_dimension = [], {}
    for dimension, base_name, name, index, base, other in pairs:
        diffs = compare(base, results[base.text], other, results[other.text])
        cell = by_dimension.setdefault(dimension, {"pairs": 0, "differing": 0, "differences": 0})
        cell["pairs"] += 1
        cell["differing"] += bool(diffs)
        cell["differences"] += len(diffs)
        differences += [{"dimension": dimension, "baseline": base_name, "variant": name, "template": index, **d}
                        for d in diffs]
    return {
        "pairs": len(pairs),
        "pairs_differing": sum(c["differing"] for c in by_dimension.values()),
        "notes_analysed": len(texts),
        "by_dimension": by_dimension,
        "differences": differences,
    }
