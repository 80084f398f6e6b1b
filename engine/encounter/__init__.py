"""The encounter's code set: what a coder would submit for one note, built on the ICD-10-CM conventions.

Public API (see docs/encounter.md):

- :class:`EncounterBuilder` (the ``encounter`` stage, :func:`load`): ``build(analysis, text, setting, icd)``.
- :class:`Encounter`, :class:`CodeLine`, :class:`Conflict`, :class:`Dropped`: the result, ``to_dict``/``from_dict``.
- :func:`apply_decisions`: a coder's accept/remove/move/add decisions applied to a code set;
  :func:`record_decisions` also returns the :class:`DecisionRecord` to store/export, :func:`replay` re-applies one.
- :func:`code_note`: the ``code`` verb for one note, with a pipeline; :func:`analysis_from_dict` rebuilds the
  analysis the app keeps as JSON.
"""

from engine.encounter.builder import SETTING_CHOICES, EncounterBuilder, check_setting, load
from engine.encounter.decisions import Decision, DecisionRecord, apply_decisions, record_decisions, replay
from engine.encounter.model import SETTINGS, CodeLine, Conflict, Dropped, Encounter
from engine.encounter.service import analysis_from_dict, apply_coder_decisions, build_encounter, code_note

__all__ = [
    "SETTINGS",
    "SETTING_CHOICES",
    "CodeLine",
    "Conflict",
    "Decision",
    "DecisionRecord",
    "Dropped",
    "Encounter",
    "EncounterBuilder",
    "analysis_from_dict",
    "apply_coder_decisions",
    "apply_decisions",
    "build_encounter",
    "check_setting",
    "code_note",
    "load",
    "record_decisions",
    "replay",
]
