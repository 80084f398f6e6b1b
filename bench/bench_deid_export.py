"""Cost of de-identifying at export: ``iter_documents`` with and without ``deidentify``, interleaved in one run.

Run from the repository root: ``PYTHONPATH=. .venv/bin/python bench/bench_deid_export.py [n_notes]``. The notes are
the bulk test notes (``tests/support/db_testing.seed_bulk_sqlite``), stored before ``store_text`` existed, so the
default export redacts every one of them.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.db_testing import seed_bulk_sqlite

from db.export import ExportOptions, iter_documents
from db.session import init_db, session_scope
from engine.deid.export import default_deidentifier


def main(n_notes: int = 300) -> None:
    """Print seconds per export pass, plain and de-identified, two interleaved rounds, and the load average."""
    path = Path(tempfile.mkdtemp()) / "bench.sqlite"
    url = f"sqlite:///{path}"
    init_db(url)
    seed_bulk_sqlite(path, n_notes, 25, 4)
    default_deidentifier()  # the one-time load is not part of a pass
    engine = init_db(url)
    for rnd in range(2):
        for flag in (False, True):
            started, chars = time.perf_counter(), 0
            with session_scope(engine, write=False) as session:
                for doc in iter_documents(session, options=ExportOptions(deidentify=flag)):
                    chars += len(doc["text"])
            seconds = time.perf_counter() - started
            print(f"round {rnd} deidentify={flag}: {seconds:.2f} s for {n_notes} notes, {chars} chars, "
                  f"{1000 * seconds / max(chars, 1) * 1000:.1f} ms per 1,000 chars")
    print("load average", os.getloadavg())


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
