"""Assertion stage: is a finding negated, possible, hypothetical, historical, or about a family member?

A ConText-style engine (Harkema et al. 2009) in plain Python, driven by rule files in ``assets/rules/``:

- ``assertion_triggers.tsv``: trigger phrases with a trait, a direction (forward, backward, bidirectional), a
  maximum scope in words, plus termination terms ("but", "however", a new clause) and pseudo-triggers
  ("no change", "not only") that look like triggers but modify nothing; and time cues (``date``, ``future``,
  ``future-weak``, ``past``) that decide whether a dated finding is past or planned (:func:`_resolve_date`).
- ``assertion_sections.tsv``: sections whose findings all carry a trait (past medical history -> historical,
  family history -> family; plan sections -> ``future``, which makes a date there a plan's date).

Each note is split into sentences once; only sentences holding a span are tokenised and scanned for triggers
(longest match wins, left to right), and every span in a sentence is judged against that one scan, so judging
many spans of a note costs little more than judging one.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.assertion_rules import (
    PLAN_SECTION,
    PROCEDURES_FILE,
    RULES_VERSION,
    SECTIONS_FILE,
    TOKEN,
    TRIGGERS_FILE,
    Rule,
    expand,
    names_operation,
    read_procedure_words,
    read_section_traits,
    read_triggers,
)
from engine.assertion_sentences import SENTENCE_END, is_sentence_end, line_width
from engine.settings import Settings
from engine.types import TRAITS, Judgement, Section, sort_traits

__all__ = ["AssertionStage", "Rule", "expand", "load", "read_section_traits", "read_triggers"]

# Which trait's terminators end a time cue's scope. A past cue stops only where every scope does (family has no
# terminators of its own): historical's own ("with", "now", "recent") would cut "presented with ... in May 2008".
_CUE_STOPS = {
    "date": "historical", "future": "hypothetical", "future-weak": "hypothetical",
    "past": "family", "current": "family", "current-weak": "family", "recent": "historical",
    "procedure": "historical", "actual": "family",
}
_YEAR = re.compile(r"(?:19|20)\d\d\Z")
_NUMBER_WORDS = frozenset(
    {
        *("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"),
        *("fifteen", "twenty", "thirty", "forty", "fifty", "several", "few", "many"),
    }
)
@dataclass(slots=True)
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)


@dataclass(slots=True)
class _Match:
    start: int  # token index
    end: int  # token index, exclusive
    rule: Rule
    char_start: int
    char_end: int


@dataclass(slots=True)
class _Sentence:
    tokens: list[tuple[int, int]]  # character offsets of each token
    token_starts: list[int]
    words_before: list[int]  # number of word tokens before token i (punctuation does not count toward scope)
    triggers: list[_Match]
    terminators: dict[str, list[int]]  # trait -> sorted token indices where its scopes end


class AssertionStage:
    """Judges spans in their context with ConText-style trigger rules and section traits.

    Args:
        rules: ``(tokens, rule)`` pairs from :func:`read_triggers`.
        section_traits: Section name -> trait.
        version: Version string written in results.
        procedures: Operation words and word endings (:func:`read_procedure_words`) for the ``procedure`` cue.
    """

    def __init__(self, rules: list[tuple[list[str], Rule]], section_traits: dict[str, str], version: str,
                 procedures: tuple[frozenset[str], tuple[str, ...]] = (frozenset(), ())) -> None:
        self.version = version
        self.section_traits = section_traits
        self._procedures = procedures
        self._sentence_cache: dict[tuple[str, tuple[int, ...]], list[int]] = {}
        self._root = _Node()
        for tokens, rule in rules:
            node = self._root
            for token in tokens:
                node = node.children.setdefault(token, _Node())
            node.rules.append(rule)

    # ---- scanning
    def _longest(self, words: list[str], i: int) -> tuple[int, list[Rule]]:
        best_len, best_rules = 0, []
        frontier = [(self._root, i)]
        while frontier:
            node, j = frontier.pop()
            if node.rules and j - i > best_len:
                best_len, best_rules = j - i, node.rules
            if j >= len(words):
                continue
            word = words[j]
            child = node.children.get(word)
            if child is not None:
                frontier.append((child, j + 1))
            if "#year" in node.children and _YEAR.match(word):
                frontier.append((node.children["#year"], j + 1))
            if "#num" in node.children and (word.isdigit() or word in _NUMBER_WORDS):
                frontier.append((node.children["#num"], j + 1))
        return best_len, best_rules

    def _scan(self, text: str, start: int, end: int) -> _Sentence:
        tokens = [(m.start(), m.end()) for m in TOKEN.finditer(text, start, end)]
        words = [text[s:e].lower() for s, e in tokens]
        words_before: list[int] = []
        count = 0
        for w in words:
            words_before.append(count)
            if w[0].isalnum() or w[0] == "_":
                count += 1
        words_before.append(count)
        triggers: list[_Match] = []
        terminators: dict[str, list[int]] = {t: [] for t in TRAITS}
        root = self._root.children
        numeric = "#num" in root or "#year" in root
        i = 0
        while i < len(words):
            word = words[i]
            if word not in root and not (numeric and (word.isdigit() or word in _NUMBER_WORDS)):
                i += 1  # most words start no rule: skip the trie walk
                continue
            length, rules = self._longest(words, i)
            if not length:
                i += 1
                continue
            for rule in rules:
                if rule.direction == "terminate":
                    for trait in rule.traits:
                        terminators[trait].append(i)
                elif rule.direction != "pseudo":
                    triggers.append(_Match(i, i + length, rule, tokens[i][0], tokens[i + length - 1][1]))
            i += length
        return _Sentence(tokens, [s for s, _ in tokens], words_before, triggers, terminators)

    def _sentences(self, text: str, cuts: Sequence[int]) -> list[int]:
        """Sorted sentence start offsets (0 first); the last few notes are remembered for repeated calls."""
        key = (text, tuple(cuts))
        cached = self._sentence_cache.get(key)
        if cached is not None:
            return cached
        starts = {0}
        width = line_width(text)
        starts.update(m.start() + 1 for m in SENTENCE_END.finditer(text) if is_sentence_end(text, m.start(), width))
        starts.update(c for c in cuts if 0 < c < len(text))
        result = sorted(starts)
        if len(self._sentence_cache) >= 64:
            self._sentence_cache.clear()
        self._sentence_cache[key] = result
        return result

    @staticmethod
    def _sentence_around(text: str, start: int, end: int, cuts: Sequence[int]) -> tuple[int, int]:
        """The sentence holding ``[start, end)``, found by looking outward from the span only (one-span calls)."""
        left = 0
        window = 512
        width = line_width(text)
        while True:
            lo = max(0, start - window)
            ends = SENTENCE_END.finditer(text, lo, start)
            found = [m.start() + 1 for m in ends if is_sentence_end(text, m.start(), width)]
            if found or lo == 0:
                left = found[-1] if found else 0
                break
            window *= 4
        right = len(text)
        for m in SENTENCE_END.finditer(text, max(end - 1, start)):
            if is_sentence_end(text, m.start(), width):
                right = m.start() + 1
                break
        for cut in cuts:
            if left < cut <= start:
                left = cut
            elif end <= cut < right:
                right = cut
        return left, right

    # ---- judging
    def _judge_in(self, sentence: _Sentence, start: int, end: int) -> dict[str, tuple[int, int, int]]:
        """Traits of span ``[start, end)`` from the sentence's triggers: ``trait -> (distance, trigger offsets)``."""
        starts = sentence.token_starts
        ts = max(bisect.bisect_right(starts, start) - 1, 0)
        if ts < len(sentence.tokens) and sentence.tokens[ts][1] <= start:
            ts += 1
        te = max(bisect.bisect_left(starts, end), ts + 1)
        wb = sentence.words_before
        found: dict[str, tuple[int, int, int]] = {}
        for match in sentence.triggers:
            # A trigger that starts before the span but runs into it ("No acute" of "No [acute fracture]", where
            # "no acute" is one rule) modifies it as if right before it; one starting inside the span (an entity
            # such as "no-reflow") does not.
            runs_in = match.start < ts < match.end
            rule = match.rule
            trait = rule.traits[0]
            # A span that opens with its own history words ("[history of tuberculosis]", "[previous hernia repair]")
            # is historical by them.
            opens = trait == "historical" and match.start == ts and match.end < te
            if match.start < te and match.end > ts and not (runs_in or opens):
                continue
            stops = sentence.terminators[_CUE_STOPS.get(trait, trait)]
            distance = -1
            if (runs_in or opens) and rule.direction in {"forward", "bidirectional"}:
                distance = 0
            elif match.end <= ts and rule.direction in {"forward", "bidirectional"}:
                # A terminator between the trigger and the span ends the scope before the span.
                k = bisect.bisect_left(stops, match.end)
                if k < len(stops) and stops[k] < ts:
                    continue
                distance = wb[ts] - wb[match.end]
            elif match.start >= te and rule.direction in {"backward", "bidirectional"}:
                k = bisect.bisect_left(stops, te)
                if k < len(stops) and stops[k] < match.start:
                    continue
                distance = wb[match.start] - wb[te]
            if distance < 0 or (rule.max_scope and distance >= rule.max_scope):
                continue
            if trait not in found or distance < found[trait][0]:
                found[trait] = (distance, match.char_start, match.char_end)
        return found

    def _locate(
        self, text: str, spans: Sequence[tuple[int, int]], sections: Sequence[Section]
    ) -> tuple[list[tuple[int, int, int | None]], list[tuple[int, int]]]:
        """Each span's sentence ``(start, end)`` and section index, and every section's header extent."""
        cuts: list[int] = []
        headers: list[tuple[int, int]] = []
        for section in sections:
            header_end = _header_end(text, section.start, section.end)
            headers.append((section.start, header_end))
            cuts.extend((section.start, header_end))
        starts = self._sentences(text, cuts) if len(spans) > 1 else []
        located: list[tuple[int, int, int | None]] = []
        for start, end in spans:
            if starts:
                k = bisect.bisect_right(starts, start) - 1
                s_start = starts[k]
                s_end = starts[k + 1] if k + 1 < len(starts) else len(text)
                while s_end < end and k + 1 < len(starts):  # a span across a sentence end judges in both
                    k += 1
                    s_end = starts[k + 1] if k + 1 < len(starts) else len(text)
            else:
                s_start, s_end = self._sentence_around(text, start, end, cuts)
            section_at = next((k for k, sec in enumerate(sections) if sec.start <= start < sec.end), None)
            located.append((s_start, s_end, section_at))
        return located, headers

    def sentence_cues(self, text: str, bounds: tuple[int, int]) -> set[str]:
        """Traits that some trigger or time cue in the sentence ``text[bounds[0]:bounds[1]]`` could give, whatever
        its scope: where a trait is absent here the rules' "no" is a confident one (used to label training data)."""
        as_trait = {cue: "historical" for cue in ("date", "past", "current", "current-weak", "recent", "procedure")}
        as_trait.update({"future": "hypothetical", "future-weak": "hypothetical"})
        sentence = self._scan(text, *bounds)
        return {as_trait.get(m.rule.traits[0], m.rule.traits[0]) for m in sentence.triggers} - {"actual"}

    def model_inputs(
        self, text: str, spans: Sequence[tuple[int, int]], sections: Sequence[Section] | None = None
    ) -> list[tuple[str, int, int, tuple[int, int], str | None]]:
        """What the learned classifier reads for each span: ``(text, start, end, sentence bounds, section name)``,
        the same sentence the rules judge (:mod:`engine.assertion_learned`)."""
        sections = list(sections or [])
        located, _ = self._locate(text, spans, sections)
        return [
            (text, start, end, (s0, s1), sections[at].name if at is not None else None)
            for (start, end), (s0, s1, at) in zip(spans, located, strict=True)
        ]

    def judge(
        self, text: str, spans: Sequence[tuple[int, int]], sections: Sequence[Section] | None = None
    ) -> list[Judgement]:
        """Judge each span of a note in its context.

        Args:
            text: The note, exactly as given.
            spans: ``(start, end)`` character offsets of the findings to judge.
            sections: The note's sections (from :mod:`engine.sections`), or ``None``.

        Returns:
            One :class:`~engine.types.Judgement` per span, in order: traits in the contract's order and the trigger
            text (as written in the note) that caused the first of them.
        """
        sections = list(sections or [])
        located, headers = self._locate(text, spans, sections)
        cache: dict[int, _Sentence] = {}
        results: list[Judgement] = []
        for (start, end), (s_start, s_end, section_at) in zip(spans, located, strict=True):
            key = s_start * 1_000_003 + s_end
            sentence = cache.get(key)
            if sentence is None:
                sentence = cache[key] = self._scan(text, s_start, s_end)
            found = self._judge_in(sentence, start, end)
            procedure = found.pop("procedure", None)
            if procedure is not None and names_operation(text[start:end], self._procedures):
                found.setdefault("historical", procedure)
            section_trait = None
            header = headers[section_at] if section_at is not None else (0, 0)
            if section_at is not None and start >= header[1]:
                section_trait = self.section_traits.get(sections[section_at].name)
            results.append(self._decide(text, found, section_trait, header))
        return results

    @staticmethod
    def _decide(
        text: str, found: dict[str, tuple[int, int, int]], section_trait: str | None, header: tuple[int, int]
    ) -> Judgement:
        """The judgement from the triggers in scope (``found``, changed in place) and the section's trait."""
        in_plan = section_trait == PLAN_SECTION
        actual = found.pop("actual", None)  # "You were seen for ...": the patient's now, whatever the section says
        if in_plan:
            section_trait = None
        _resolve_date(found, in_plan)
        now = [found.pop(cue, None) for cue in ("current", "recent")]
        weak = found.pop("current-weak", None)
        if now != [None, None] or weak is not None:
            # "History of atrial fibrillation, controlled on metoprolol": treated now, so a current condition.
            found.pop("historical", None)
            if section_trait == "historical" and now != [None, None]:
                section_trait = None
        if section_trait == "hypothetical" and (actual is not None or found):
            # An instructions section's item is a condition to watch for only where nothing in its clause says
            # otherwise ("She has a history of [hypertension]", "You were seen for [cellulitis]", "no [fever]").
            section_trait = None
        triggers = {t: text[v[1] : v[2]] for t, v in found.items()}
        header_text = text[header[0] : header[1]].rstrip(" :\t\r\n,")
        # "PMH: ... No history of mania": a negated finding had no past episode to date.
        negated_past = section_trait == "historical" and "negated" in triggers
        if section_trait is not None and not negated_past and section_trait not in triggers:
            triggers[section_trait] = header_text
        if found.get("hypothetical") == _PLAN:  # the plan section's header is the trigger
            triggers["hypothetical"] = header_text
        if "family" in triggers:
            # A relative's "history of", "at age 45" or "was diagnosed with" dates the relative's condition;
            # the historical trait is about the patient's own past.
            triggers.pop("historical", None)
        traits = sort_traits(list(triggers))
        return Judgement(traits=traits, trigger=triggers[traits[0]] if traits else None)


_PLAN = (1 << 30, -1, -1)  # a plan section's header standing in for a future cue (its text is filled in later)


def _resolve_date(found: dict[str, tuple[int, int, int]], in_plan: bool) -> None:
    """Turn the time cues in ``found`` into a trait: a date is a plan's date or a past one (in place).

    A date cue gives historical only where no regular historical trigger already did. It gives hypothetical instead
    when a future cue or a hypothetical trigger is nearer the span than any past cue, or when there is no past cue
    and a weak future cue or a plan section (``in_plan``) is there: "Colonoscopy in March showed polyps" and
    "Follow-up CT in March showed resolution" stay historical, "Plan: repeat colonoscopy in March" is planned.
    """
    date = found.pop("date", None)
    future = found.pop("future", None)
    weak = found.pop("future-weak", None)
    past = found.pop("past", None)
    if date is None:
        return
    ahead = future
    hypothetical = found.get("hypothetical")
    if hypothetical is not None and (ahead is None or hypothetical[0] < ahead[0]):
        ahead = hypothetical
    if past is None and ahead is None:
        ahead = weak if weak is not None else (_PLAN if in_plan else None)
    if ahead is not None and (past is None or ahead[0] < past[0]):
        found.setdefault("hypothetical", ahead)
    elif "historical" not in found:
        found["historical"] = date


def _header_end(text: str, start: int, end: int) -> int:
    """Where a section's header ends: after its colon (and a following comma), else at the end of its line."""
    limit = min(end, start + 80)
    colon = text.find(":", start, limit)
    newline = text.find("\n", start, limit)
    if colon != -1 and (newline == -1 or colon < newline):
        stop = colon + 1
        if stop < len(text) and text[stop] == ",":
            stop += 1
        return stop
    return newline + 1 if newline != -1 else limit


def load_rules(settings: Settings) -> AssertionStage:
    """Build the rules stage from the rule files in ``settings.rules_dir``."""
    rules_dir = Path(settings.rules_dir)
    triggers_path = rules_dir / TRIGGERS_FILE
    sections_path = rules_dir / SECTIONS_FILE
    procedures_path = rules_dir / PROCEDURES_FILE
    rules = read_triggers(triggers_path)
    section_traits = read_section_traits(sections_path)
    procedures = read_procedure_words(procedures_path)
    blob = triggers_path.read_bytes() + sections_path.read_bytes()
    if procedures_path.is_file():
        blob += procedures_path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()[:10]
    return AssertionStage(rules, section_traits, f"context-rules-{RULES_VERSION}-{digest}", procedures)


def load(settings: Settings) -> Any:
    """The assertion stage: the rules, combined with the learned classifier when the model set has one that asks
    for it (``<model_dir>/assertion/config.json`` with ``combine.fill`` and ``combine.gate``) and
    ``settings.assertion`` allows it (``rules`` turns it off)."""
    rules = load_rules(settings)
    mode = settings.assertion
    if mode == "rules":
        return rules
    from engine.assertion_learned import (
        CombinedAssertionStage,
        LearnedAssertion,
        combination,
        combination_gate,
        model_folder,
    )

    folder = model_folder(settings.model_dir)
    fill = combination(folder) if folder is not None else {}
    if folder is None or (mode == "auto" and not fill):
        return rules
    from engine.backbone import resolve_device

    model = LearnedAssertion(folder, resolve_device(settings.device))
    return CombinedAssertionStage(rules, model, fill, combination_gate(folder))
