"""Per-code attributes read off the tabular descriptions: sides, acuity, sequelae, dominance, zones.

They let the scorer apply what a mention says beyond the matched words, the way a coder reads the tabular list:
the side picks the sided child ("left carpal tunnel" -> G56.02), an acuity word ranks codes of another acuity
lower and reaches the same wording's twin of that acuity, "residual" prefers sequela codes.
"""

from __future__ import annotations

import re

import numpy as np

from engine.icd.tabular import IndexData

SIDES = {"left": "left", "right": "right", "bilater": "bilateral"}
"""Mention stems that name a side, and the word the tabular list uses for it."""
SIDE_RE = re.compile(r"\b(left|right|bilateral)\b")
ACUITY_RE = re.compile(r"\b(subacute|acute|chronic)\b")
ACUTE_ON_CHRONIC_RE = re.compile(r"\bacute(?:\s*-\s*|\s+)(?:on|and|/)?(?:\s*-\s*|\s*)chronic\b")
""""acute on chronic", "acute-on-chronic", "acute and chronic", "acute/chronic": the tabular list's "Acute and
chronic ..." (I50.23, J96.21)."""
DOMINANCE_DEFAULT = {"right": "dominant", "left": "nondominant"}
"""ICD-10-CM guideline I.C.6.a: when the note does not say which side is dominant, the right side is taken as
dominant and the left as non-dominant (hemiplegia, monoplegia and their sequelae)."""
INJURY_RANGE = ("S00", "T34")


class CodeTables:
    """Plain-list views of the index arrays and the attribute tables (see the module docstring).

    Args:
        data: A loaded index.
    """

    def __init__(self, data: IndexData) -> None:
        self.codes = data.codes
        # Plain lists: memmap indexing and numpy scalars cost microseconds per access in the hot loop.
        self.billable: list[bool] = np.asarray(data.billable).tolist()
        self.extension: list[bool] = np.asarray(data.extension).tolist()
        self.parent: list[int] = np.asarray(data.parent).tolist()
        self.default_leaf: list[int] = np.asarray(data.default_leaf).tolist()
        self.desc_len = [len(d) for d in data.descriptions]
        self.desc_lower = [d.lower() for d in data.descriptions]
        self.perinatal: list[bool] = [c.startswith("P") for c in data.codes]
        self.injury = [INJURY_RANGE[0] <= c[:3] <= INJURY_RANGE[1] for c in data.codes]
        self.dominance = self._dominance_of_codes()
        self.has_side = [
            ("left" in d or "right" in d or "bilateral" in d) and bool(SIDE_RE.search(d)) for d in self.desc_lower
        ]
        self.sided = self._sided_leaves()
        self.unsided = self._unsided_codes()
        self.acuity, self.sibling_acuity = self._acuity_of_codes()
        self.acuity_twins = self._twins_by_acuity()
        self.sequela = self._sequela_codes()

    def _sided_leaves(self) -> dict[tuple[int, str], int]:
        """``(code index, side) -> billable code`` of that side just below a code that names no side.

        A mention such as "left carpal tunnel" matches the category "Carpal tunnel syndrome" best (the children
        add "upper limb"); its default child is the unspecified side, so the side the note names is looked up
        here among the category's children and grandchildren ("..., left upper limb").
        """
        # -> (distance, against the default dominance, description length, leaf)
        best: dict[tuple[int, str], tuple[int, int, int, int]] = {}
        for ci, desc in enumerate(self.desc_lower):
            if not self.has_side[ci]:
                continue
            found = set(SIDE_RE.findall(desc))
            if len(found) != 1:
                continue
            side = found.pop()
            leaf = self.default_leaf[ci]
            if not self.billable[leaf]:
                continue
            ancestor = ci
            for distance in (1, 2):
                below, ancestor = ancestor, self.parent[ancestor]
                if ancestor < 0 or ancestor == below or self.has_side[ancestor]:
                    break
                if distance == 2 and self.default_leaf[below] != self.default_leaf[ancestor]:
                    # Only through the category's default child: "right radius, unspecified fracture of the lower
                    # end", not the (shorter) "Colles' fracture of right radius".
                    break
                # "Hemiplegia ... affecting left non-dominant side", not the shorter "... left dominant side".
                wrong_dominance = int(bool(self.dominance[ci]) and self.dominance[ci] != DOMINANCE_DEFAULT.get(side))
                cand = (distance, wrong_dominance, len(desc), leaf)
                if cand < best.get((ancestor, side), (9, 0, 0, 0)):
                    best[(ancestor, side)] = cand
        return {key: leaf for key, (*_, leaf) in best.items()}

    def _unsided_codes(self) -> list[bool]:
        """Billable codes naming no side whose siblings do ("Unspecified ovarian cyst, unspecified side")."""
        with_sides = {ci for ci, _ in self.sided}
        return [
            self.billable[ci] and self.parent[ci] in with_sides and not self.has_side[ci]
            for ci in range(len(self.codes))
        ]

    def _acuity_of_codes(self) -> tuple[list[frozenset[str]], dict[int, frozenset[str]]]:
        """Acuity words of every code's description, and those its siblings name (per parent code).

        Words in parentheses count too: "Venous insufficiency (chronic) (peripheral)" is the chronic code.
        """
        none: frozenset[str] = frozenset()
        acuity = [
            frozenset(ACUITY_RE.findall(low)) if "acute" in low or "chronic" in low else none for low in self.desc_lower
        ]
        siblings: dict[int, set[str]] = {}
        for ci, a in enumerate(acuity):
            if a and self.parent[ci] >= 0:
                siblings.setdefault(self.parent[ci], set()).update(a)
        return acuity, {p: frozenset(a) for p, a in siblings.items()}

    def _twins_by_acuity(self) -> dict[tuple[int, frozenset[str]], int]:
        """``(code, acuity) -> code`` worded the same but for its acuity ("Acute embolism ... of lower extremity"
        -> "Chronic embolism ... of lower extremity"; "Acute ... heart failure" -> "Acute on chronic ...")."""
        by_key: dict[str, dict[frozenset[str], int]] = {}
        for ci, a in enumerate(self.acuity):
            if a:
                key = ACUITY_RE.sub("#", ACUTE_ON_CHRONIC_RE.sub("#", self.desc_lower[ci]))
                by_key.setdefault(key, {}).setdefault(a, ci)
        twins: dict[tuple[int, frozenset[str]], int] = {}
        for group in by_key.values():
            for a, ci in group.items():
                for b, other in group.items():
                    if a != b:
                        twins[(ci, b)] = other
        return twins

    def _sequela_codes(self) -> list[bool]:
        """Codes that are sequelae: "Sequelae of ..." and everything below it (I69.354), "..., sequela" (S)."""
        out = [False] * len(self.codes)
        for ci, low in enumerate(self.desc_lower):
            p = self.parent[ci]
            # Parents come before their children in the tabular order, so one pass suffices.
            out[ci] = "sequela" in low or (0 <= p < ci and out[p])
        return out

    def _dominance_of_codes(self) -> list[str]:
        """``"dominant"``, ``"nondominant"`` or ``""`` per code (hemiplegia, monoplegia, their sequelae)."""
        out = []
        for low in self.desc_lower:
            if "dominant" not in low:
                out.append("")
            else:
                out.append("nondominant" if ("nondominant" in low or "non-dominant" in low) else "dominant")
        return out
