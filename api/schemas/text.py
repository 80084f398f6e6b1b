"""Bodies of ``/summarize``, ``/link`` and ``/deidentify``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import StrictInt
from api.schemas.predict import CodeOut, SentenceOut

Label = Literal["DIAG", "PROC", "MED", "TEST", "ANAT"]


class SummarizeRequest(BaseModel):
    """A note to summarise."""

    model_config = ConfigDict(extra="forbid")

    note_id: str | None = Field(None, max_length=500)
    note_text: str = Field(min_length=1)
    sentences: StrictInt | None = Field(None, ge=0, le=100, description="How many (default: by note length).")
    store: bool = Field(False, description="Store the summary; sentences then carry sentence_id for keep/drop.")


class SummarizeResponse(BaseModel):
    """Key sentences, verbatim, in the note's own order."""

    note_id: str | None
    sentences: list[SentenceOut]
    model_version: str
    processing_time_ms: float
    summary_id: int | None = None


class LinkRequest(BaseModel):
    """A mention to code (the engine's ``link`` verb)."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, max_length=500)
    text: str = Field(min_length=1, max_length=1000, description="The mention, e.g. 'heart attack'.")
    label: Label = "DIAG"


class LinkResponse(BaseModel):
    """ICD-10-CM suggestions, best first (at most 5)."""

    id: str | None
    label: str
    codes: list[CodeOut]
    processing_time_ms: float


class DeidentifyRequest(BaseModel):
    """A note to de-identify (the engine's ``deidentify`` verb: ``{"id", "text"}``)."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, max_length=500, description="Echoed back; your id for the note.")
    text: str = Field(min_length=1, description="The note; over the size limit (setting) gets 413.")


class PhiOut(BaseModel):
    """One PHI span; offsets into the input ``text``."""

    start: int
    end: int
    label: str = Field(description="NAME, DATE, AGE, ID, PHONE, EMAIL, URL, LOCATION or HOSPITAL")


class DeidentifyResponse(BaseModel):
    """The contract's ``deidentify`` object: the redacted note and the PHI found (offsets into the input)."""

    id: str | None
    text: str = Field(description="The redacted note.")
    phi: list[PhiOut]
    processing_time_ms: float
