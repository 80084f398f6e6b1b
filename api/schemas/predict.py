"""Bodies of ``/predict`` and ``/predict/batch``.

Field names of the seed design (``entities[].text/type/start_char/end_char/confidence/icd_codes[]/is_negated/
negation_trigger``, ``processing_time_ms``, ``model_version``) are kept exactly; the engine's richer fields
(assertion, traits, section, codes with descriptions, the summary, the encounter code set) come beside them.
Offsets are Python string indices into ``note_text`` exactly as sent: ``note_text[start_char:end_char] == text``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from api.schemas.common import ErrorBody, StrictInt

Priority = Literal["stat", "urgent", "routine"]
Setting = Literal["outpatient", "inpatient"]


class NoteMetadata(BaseModel):
    """Where the note comes from (echoed back; the engine does not read it). Other keys are accepted and echoed."""

    model_config = ConfigDict(extra="allow")

    encounter_id: str | None = Field(None, max_length=200)
    department: str | None = Field(None, max_length=200)
    provider_id: str | None = Field(None, max_length=200)


class PredictRequest(BaseModel):
    """One note to analyse."""

    model_config = ConfigDict(extra="forbid")

    note_id: str | None = Field(None, max_length=500, description="Echoed back; your id for the note.")
    note_text: str = Field(min_length=1, description="The note; over the size limit (setting) gets 413.")
    note_type: str | None = Field(None, max_length=100, description="e.g. discharge summary (echoed back).")
    priority: Priority = Field("routine", description="Queue order: stat before urgent before routine.")
    metadata: NoteMetadata = Field(default_factory=NoteMetadata)
    include_summary: bool = Field(False, description="Add the extractive summary.")
    summary_sentences: StrictInt | None = Field(None, ge=0, le=100, description="Summary length (default: by "
                                                "note length).")
    include_encounter: bool = Field(False, description="Add the encounter's code set (the engine's 'code' verb "
                                    "object) as encounter.")
    setting: Setting | None = Field(None, description="Encounter setting (implies include_encounter). Default: "
                                    "from note_type when it names one or reads as inpatient (e.g. 'discharge "
                                    "summary'), else from the note's own words.")
    store: bool = Field(False, description="Store the note and analysis in the feedback store and return "
                        "analysis_id and per-entity suggestion_id for POST /feedback.")


class CodeOut(BaseModel):
    """One ICD-10-CM suggestion, best first."""

    code: str
    description: str
    score: float
    billable: bool


class EntityOut(BaseModel):
    """One entity; ``note_text[start_char:end_char] == text``."""

    text: str
    type: str = Field(description="DIAG, PROC, MED, TEST or ANAT")
    start_char: int
    end_char: int
    confidence: float
    icd_codes: list[str] = Field(description="The suggested codes, best first (descriptions in codes).")
    is_negated: bool
    negation_trigger: str | None = Field(description="The words that negate it, when negated.")
    assertion: str = Field(description="present, negated, family, hypothetical, possible or historical")
    traits: list[str]
    trigger: str | None = Field(description="The words behind the first trait.")
    section: str | None
    codes: list[CodeOut]
    coding_note: str | None = Field(None, description="Why there is no code (e.g. 'negated: not coded').")
    suggestion_id: int | None = Field(None, description="With store: the id POST /feedback decides on.")


class SentenceOut(BaseModel):
    """One summary sentence, verbatim; ``rank`` 1 is the most salient."""

    start: int
    end: int
    text: str
    score: float
    rank: int
    sentence_id: int | None = Field(None, description="With store: the id a keep/drop decision names.")


class SummaryOut(BaseModel):
    """Key sentences in the note's own order."""

    sentences: list[SentenceOut]
    model_version: str
    summary_id: int | None = None


class PredictResponse(BaseModel):
    """The analysis of one note."""

    note_id: str | None
    note_type: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    entities: list[EntityOut]
    processing_time_ms: float = Field(description="Server time for this note, queueing included.")
    model_version: str = Field(description="The NER model's version.")
    models: dict[str, str] = Field(description="Every stage's model or table version.")
    timings_ms: dict[str, float] = Field(description="Engine time per stage.")
    summary: SummaryOut | None = None
    encounter: dict[str, Any] | None = Field(None, description="The encounter's code set (engine contract's "
                                             "'code' verb object), when asked for.")
    analysis_id: int | None = Field(None, description="With store: the stored analysis.")


NotesField = Annotated[
    list[Any],
    Field(min_length=1),
    WithJsonSchema({"type": "array", "minItems": 1, "maxItems": 32,
                    "items": {"$ref": "#/components/schemas/PredictRequest"}}),
]


class BatchRequest(BaseModel):
    """Up to 32 notes (setting); each is validated on its own, so one bad note gets its own error entry."""

    model_config = ConfigDict(extra="forbid")

    notes: NotesField


class BatchItem(BaseModel):
    """The outcome of one note of a batch, at its input position."""

    index: int
    note_id: str | None
    status: int = Field(description="200, or the status the note would have had alone (413, 422, ...).")
    result: PredictResponse | None = None
    error: ErrorBody | None = None


class BatchResponse(BaseModel):
    """One item per input note, in input order."""

    results: list[BatchItem]
    succeeded: int
    failed: int
    processing_time_ms: float


class BadNote(ValueError):
    """A batch note that cannot be analysed (its entry carries ``status`` and ``error``)."""

    def __init__(self, status: int, error: ErrorBody) -> None:
        super().__init__(error.message)
        self.status = status
        self.error = error


def note_id_of(raw: Any) -> str | None:
    """The ``note_id`` of a raw batch item, if it has a usable one (for its error entry)."""
    if isinstance(raw, dict) and isinstance(raw.get("note_id"), str):
        return raw["note_id"][:500]
    return None

