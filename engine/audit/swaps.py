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
from engine.templates import fill_slots

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
    text, spans = fill_slots(template, SLOT_RE, lambda name: (values[name], name))
    return Rendered(text, tuple((start, end) for start, end, _ in spans))


def _masked(note: Rendered, start: int, end: int) -> str:
    """The entity's text with every swapped value it covers replaced by ``<swap>``."""
    parts, pos = [], start
    for slot_start, slot_end in note.slots:
        if slot_start < end and start < slot_end:
            parts.append(note.text[pos : max(pos, slot_start)])
            parts.append("<swap>")
            pos = max(pos, slot_end)
    parts.append(note.text[pos:end] if pos < end else "")
    return "".join(parts)


def entity_keys(note: Rendered, result: dict[str, Any]) -> tuple[Counter[tuple[Any, ...]], dict[tuple[Any, ...], str]]:
    """Comparable keys of a result's entities, ``(label, masked text, assertion, top code)``, and each key's
    text as it stands in the note."""
    keys: Counter[tuple[Any, ...]] = Counter()
    raw: dict[tuple[Any, ...], str] = {}
    for e in result["entities"]:
        codes = tuple(c["code"] for c in e.get("codes", [])[:1])
        key = (e["label"], _masked(note, e["start"], e["end"]), e["assertion"], codes)
        keys[key] += 1
        raw.setdefault(key, note.text[e["start"] : e["end"]])
    return keys, raw


def _kind(key: tuple[Any, ...], twin: tuple[Any, ...]) -> str:
    """What differs between two keys of the same text: the label, the assertion or the code."""
    if twin[0] != key[0]:
        return "label"
    return "assertion" if twin[2] != key[2] else "codes"


def compare(base: Rendered, base_result: dict[str, Any], other: Rendered, other_result: dict[str, Any]
            ) -> list[dict[str, Any]]:
    """Every difference between two analyses of a swap pair (empty when they agree).

    An entity on one side only is a difference of kind ``entity``, unless the other side has an unmatched entity
    of the same (masked) text: then one difference of kind ``label``, ``assertion`` or ``codes`` is reported for
    the pair, with both sides' values.
    """
    (a, raw_a), (b, raw_b) = entity_keys(base, base_result), entity_keys(other, other_result)
    only_a, only_b = a - b, b - a
    diffs = []
    for key in sorted(only_a.elements(), key=str):
        twin = next((k for k in sorted(only_b, key=str) if only_b[k] > 0 and k[1] == key[1]), None)
        entry = {"label": key[0], "text": key[1], "baseline_text": raw_a[key], "assertion": key[2],
                 "codes": list(key[3])}
        if twin is None:
            diffs.append({"kind": "entity", "side": "baseline only", **entry})
            continue
        only_b[twin] -= 1
        diffs.append({"kind": _kind(key, twin), "side": "both", **entry, "variant_text": raw_b[twin],
                      "variant_label": twin[0], "variant_assertion": twin[2], "variant_codes": list(twin[3])})
    for key in sorted(only_b.elements(), key=str):
        if only_b[key] > 0:
            only_b[key] -= 1
            diffs.append({"kind": "entity", "side": "variant only", "label": key[0], "text": key[1],
                          "variant_text": raw_b[key], "assertion": key[2], "codes": list(key[3])})
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
