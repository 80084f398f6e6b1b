"""Export reviewed data for training and audit, streaming, with a manifest; and import the JSONL export back.

Formats:

- ``jsonl``: one line per analysis that has matching decisions, in the contract's analysis shape plus ``text``,
  ``decisions`` on every entity, reviewer-added entities, and ``gold`` (the entities after review).
- ``conll``: IOB2 tags, one token per line as ``token<TAB>start<TAB>end<TAB>tag``; a block per document.
- ``docbin``: spaCy ``DocBin`` shards (``spacy.blank("en")`` vocabulary) whose ``doc.text`` is the note exactly.
- ``brat``: BRAT standoff ``.txt``/``.ann`` pairs (traits as attributes, codes as annotator notes).
- ``summary_jsonl``: one line per summary with each sentence's keep/drop label.

One module per job: :mod:`~db.export.selection` and :mod:`~db.export.summaries` (which records, in keyset pages,
and their gold), :mod:`~db.export.manifest` (hashing writers, counts, the train/dev split), one module per format
writer, :mod:`~db.export.importer`, and :mod:`~db.export.dataset` (:func:`export_dataset`, the one entry point).
Tokens, IOB tags, BRAT fragments and overlap resolution come from :mod:`engine.corpora`, as for every corpus.
"""

from db.export.dataset import FORMATS, STREAMABLE, export_dataset
from db.export.importer import ImportReport, import_jsonl, read_jsonl
from db.export.manifest import Manifest, split_of
from db.export.options import ExportOptions
from db.export.selection import iter_documents
from db.export.summaries import iter_summaries
from db.repository import ExportFilters

__all__ = [
    "FORMATS",
    "STREAMABLE",
    "ExportFilters",
    "ExportOptions",
    "ImportReport",
    "Manifest",
    "export_dataset",
    "import_jsonl",
    "iter_documents",
    "iter_summaries",
    "read_jsonl",
    "split_of",
]
