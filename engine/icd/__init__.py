"""ICD-10-CM code suggestions for diagnosis mentions (the ``icd`` stage and the ``link`` verb).

One job per module:

- :mod:`~engine.icd.text`: words, stemmer, term flags (nonessential / absent words);
- :mod:`~engine.icd.alphabetic`: the Alphabetic Index reader (paths, See references, default subterms);
- :mod:`~engine.icd.tabular`: the lexical index built from the tabular list, the rules and the Index;
- :mod:`~engine.icd.store`: its on-disk cache;
- :mod:`~engine.icd.rules`: abbreviations, lay-term rewrites, context word lists, exam descriptors;
- :mod:`~engine.icd.query`: query normalisation;
- :mod:`~engine.icd.attributes`: per-code sides, acuity, sequelae;
- :mod:`~engine.icd.scoring`: the lexical scorer;
- :mod:`~engine.icd.history`: family/personal history Z codes and sequelae;
- :mod:`~engine.icd.dense`: the fine-tuned synonym encoder and its vector index;
- :mod:`~engine.icd.ranker`: the learned hybrid ranker and its calibration;
- :mod:`~engine.icd.linker`: the thin :class:`IcdLinker`.
"""

from __future__ import annotations

import sys

from engine.icd.linker import IcdLinker
from engine.icd.text import normalize_code
from engine.settings import Settings

__all__ = ["IcdLinker", "load", "normalize_code"]


def load(settings: Settings, hybrid: bool = True) -> IcdLinker:
    """Load the ICD stage, building and caching the index (and the dense vectors) on first use.

    A missing or malformed Alphabetic Index gives a one-line warning on stderr and the tabular-only linker
    (``linker.notice`` says so, for the app and the CLI). ``hybrid=False`` skips the learned ranker.
    """
    from engine.icd.store import load_or_build

    data, _, notice = load_or_build(settings)
    if notice:
        sys.stderr.write(f"warning: {notice}\n")
    from engine.icd.ranker import load_calibration, load_hybrid

    ranker = load_hybrid(settings, data) if hybrid else None
    return IcdLinker(settings, data, notice=notice, hybrid=ranker, calibration=load_calibration())
