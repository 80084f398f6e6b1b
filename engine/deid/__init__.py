"""PHI de-identification: patterns and checksums for structured identifiers, cue rules and a CRF tagger for
names, places and organisations, surrogate or mask redaction, and offset mapping for exports.

One job per module: :mod:`~engine.deid.patterns` (structured identifiers), :mod:`~engine.deid.cues` (cue-word
rules), :mod:`~engine.deid.tagger` with :mod:`~engine.deid.features` (the learned tagger), :mod:`~engine.deid.
surrogate` with :mod:`~engine.deid.dates` (redaction), :mod:`~engine.deid.offsets` (offset mapping) and
:mod:`~engine.deid.stage` (the stage that runs them).
"""

from engine.deid.offsets import OffsetMap, Replacement
from engine.deid.spans import LABELS, PhiSpan, merge_spans
from engine.deid.stage import Deidentifier, DeidResult, load

__all__ = ["LABELS", "DeidResult", "Deidentifier", "OffsetMap", "PhiSpan", "Replacement", "load", "merge_spans"]
