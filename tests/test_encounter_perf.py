"""The encounter stage's cost to the rest of the process (issue 19 target: ``code`` adds <= 20 ms per note).

The Tabular-notes table is loaded once per process and lives as long as it; held as lists it was ~70,000 objects
that every full garbage collection traversed (10-20 ms each, falling on whichever note was being coded: the
builder's p95 and max). Held as tuples of strings it is untracked by the collector.
"""

from __future__ import annotations

import gc

from engine.encounter.conventions import Conventions
from engine.settings import Settings


def test_tabular_notes_table_is_not_traversed_by_the_garbage_collector() -> None:
    gc.collect()
    before = len(gc.get_objects())
    conventions = Conventions.load(Settings())
    gc.collect()  # untracks the tuples and dicts that hold only strings and numbers
    added = len(gc.get_objects()) - before
    assert conventions.excludes1("E11.9", "E10.9") is not None  # the table is really loaded
    assert added < 10_000, f"{added} objects added to the collector's lists by the Tabular-notes table"
