"""Reliability of the feedback store on a real database: concurrent writers, a writer killed mid-transaction.

Runs on a fresh SQLite file, and on a throwaway PostgreSQL cluster where Debian's server can be started.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select
from support.db_testing import record_many, seed_analyses

from db.models import AuditLog, Decision
from db.session import dispose_engines, get_engine, session_scope

REPO = Path(__file__).resolve().parent.parent
PER_WRITER = 25



def _check_integrity(url: str) -> tuple[list[str], Counter[int]]:
    """Every decision has exactly one audit row and vice versa; return the comments and their counts."""
    with session_scope(get_engine(url), write=False) as s:
        decision_ids = s.scalars(select(Decision.id)).all()
        audit_refs = s.scalars(select(AuditLog.ref_id).where(AuditLog.kind == "decision")).all()
        comments = s.scalars(select(Decision.comment)).all()
        incomplete = s.scalar(
            select(func.count()).where(
                (Decision.reviewer == "") | Decision.decision.is_(None) | Decision.suggestion_id.is_(None)
            )
        )
    assert sorted(audit_refs) == sorted(decision_ids), "a decision without its audit row, or the reverse"
    assert incomplete == 0
    if url.startswith("sqlite"):
        con = sqlite3.connect(url.removeprefix("sqlite:///"))
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        con.close()
    return comments, Counter(comments)


def test_8_threads_and_4_processes_record_at_once(db_url):
    suggestion_ids = seed_analyses(db_url, 3)
    dispose_engines()  # children must not inherit pooled connections
    ctx = mp.get_context("spawn")
    errors: list[BaseException] = []
    start = threading.Barrier(8 + 1)

    def thread_writer(name: str) -> None:
        try:
            start.wait()
            record_many(db_url, suggestion_ids, name, PER_WRITER)
        except BaseException as exc:  # reported below; a thread cannot raise into the test
            errors.append(exc)

    with ctx.Pool(4) as pool:
        jobs = [pool.apply_async(record_many, (db_url, suggestion_ids, f"proc{i}", PER_WRITER)) for i in range(4)]
        threads = [threading.Thread(target=thread_writer, args=(f"thread{i}",)) for i in range(8)]
        for t in threads:
            t.start()
        start.wait()
        for t in threads:
            t.join()
        results = [job.get(timeout=300) for job in jobs]
    assert errors == []
    assert results == [PER_WRITER] * 4
    comments, counts = _check_integrity(db_url)
    writers = [f"thread{i}" for i in range(8)] + [f"proc{i}" for i in range(4)]
    expected = {f"{w}#{i}" for w in writers for i in range(PER_WRITER)}
    assert set(comments) == expected, "a decision was lost"
    assert len(comments) == len(expected) == 12 * PER_WRITER
    assert max(counts.values()) == 1, "a decision was stored twice"


def test_process_killed_while_recording_leaves_no_half_decision(db_url, tmp_path):
    suggestion_ids = seed_analyses(db_url, 2)
    dispose_engines()
    recorded_before = 0
    for round_ in range(2):
        ready = tmp_path / f"ready{round_}"
        code = (
            "import sys; sys.path.insert(0, \"tests\"); from support.db_testing import record_forever; "
            "record_forever(sys.argv[1], [int(x) for x in sys.argv[2].split(',')], sys.argv[3], sys.argv[4])"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", code, db_url, ",".join(map(str, suggestion_ids)), f"killed{round_}", str(ready)],
            cwd=REPO,
            stderr=subprocess.PIPE,
        )
        deadline = time.time() + 120
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline, "the writer never committed"
            time.sleep(0.05)
        time.sleep(0.3 + 0.2 * round_)  # let it get well into its loop, then kill it without warning
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        comments, counts = _check_integrity(db_url)
        mine = sorted(int(c.split("#")[1][:6].rstrip("x")) for c in comments if c.startswith(f"killed{round_}#"))
        # Decisions commit one by one in order: what survives is exactly the first k, with no gap and no copy.
        assert mine == list(range(len(mine))) and len(mine) >= 1
        assert max(counts.values()) == 1
        recorded_before += len(mine)
    assert len(comments) == recorded_before
    # The store still accepts writes after the kills.
    assert record_many(db_url, suggestion_ids, "after", 3) == 3
    comments, _ = _check_integrity(db_url)
    assert len(comments) == recorded_before + 3
