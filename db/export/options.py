"""How selected notes become export records: the options the document and the summary exporters share.

:func:`~db.export.dataset.export_dataset` builds one :class:`ExportOptions` from its arguments and hands it to
:func:`~db.export.selection.iter_documents` or :func:`~db.export.summaries.iter_summaries`, so an option is
validated once and means the same in both.
"""

from __future__ import annotations

from dataclasses import dataclass

from db.errors import FeedbackCode, FeedbackError
from db.export.gold import CONFLICT_OPTIONS


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """Split, paging, text and review options of one export.

    Attributes:
        split: Fraction of notes for ``dev`` (``None``: no split; each record's ``split`` is then ``None``).
        seed: Seed of the split hash.
        batch: Notes (or summaries) fetched per database page.
        deidentify: True: a note stored with its original text is redacted at export (its spans mapped onto the
            redacted text); False: it is exported as stored. Notes kept without text are always left out.
        include_silver: Documents only: export notes not marked fully reviewed too (``status='silver'``).
        conflicts: Documents only: ``exclude`` leaves out notes with an unresolved reviewer conflict, ``flag``
            exports them with it listed.

    Raises:
        FeedbackError: ``bad_export`` for an unknown ``conflicts`` option.
    """

    split: float | None = None
    seed: int = 0
    batch: int = 50
    deidentify: bool = True
    include_silver: bool = False
    conflicts: str = "exclude"

    def __post_init__(self) -> None:
        if self.conflicts not in CONFLICT_OPTIONS:
            raise FeedbackError(
                FeedbackCode.BAD_EXPORT, f"conflicts {self.conflicts!r} is not one of {CONFLICT_OPTIONS}"
            )
