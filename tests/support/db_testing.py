"""Test support for the feedback store: a throwaway PostgreSQL server, sample results, and worker functions.

The worker functions live here (not in a test module) so ``multiprocessing`` children started with ``spawn``
and plain ``python -c`` subprocesses can import them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NOTE_TEXT = (
    "HISTORY: Patient with acute myocardial infarction last year.\n"
    "Denies chest pain. Mother had breast cancer.\n"
    "PLAN: Start aspirin 81 mg daily; repeat troponin and echocardiogram of the left ventricle."
)


def sample_result(text: str = NOTE_TEXT, note_id: str = "note-1", ner: str = "ner-test-1") -> dict[str, Any]:
    """A contract-shaped analysis result for ``text`` (entities found by string search, so offsets are exact)."""
    wanted = [
        ("acute myocardial infarction", "DIAG", [], [("I21.9", "Acute myocardial infarction, unspecified")]),
        ("chest pain", "DIAG", ["negated"], []),
        ("breast cancer", "DIAG", ["family"], [("Z80.3", "Family history of malignant neoplasm of breast")]),
        ("aspirin", "MED", [], []),
        ("troponin", "TEST", [], []),
        ("echocardiogram", "TEST", [], []),
        ("left ventricle", "ANAT", [], []),
    ]
    entities = []
    for phrase, label, traits, codes in wanted:
        start = text.find(phrase)
        if start < 0:
            continue
        entities.append(
            {
                "start": start,
                "end": start + len(phrase),
                "text": phrase,
                "label": label,
                "score": 0.9,
                "assertion": traits[0] if traits else "present",
                "traits": traits,
                "trigger": "denies" if "negated" in traits else None,
                "section": None,
                "codes": [{"code": c, "description": d, "score": 0.8, "billable": True} for c, d in codes],
            }
        )
    return {
        "id": note_id,
        "entities": entities,
        "models": {"ner": ner, "assertion": "rules-1", "icd": "ICD-10-CM 2025", "summarizer": "sum-1"},
        "timings_ms": {"ner": 1.0, "assertion": 0.5, "icd": 0.7, "total": 2.2},
    }


def seed_analyses(url: str, n_notes: int) -> list[int]:
    """Store ``n_notes`` distinct analysed notes; return all their suggestion ids."""
    from db import repository as repo
    from db.session import init_db, session_scope

    engine = init_db(url)
    ids: list[int] = []
    with session_scope(engine) as session:
        for i in range(n_notes):
            text = f"Note {i}.\n{NOTE_TEXT}"
            note = repo.save_note(session, text, source=f"seed-{i}")
            analysis = repo.save_analysis(session, note, sample_result(text, f"note-{i}"))
            ids.extend(s.id for s in analysis.suggestions)
    return ids


def init_only(url: str) -> str:
    """Run :func:`db.session.init_db` (for tests that start several processes at once); returns ``"ok"``."""
    from db.session import init_db

    init_db(url)
    return "ok"


def record_many(url: str, suggestion_ids: list[int], reviewer: str, count: int) -> int:
    """Record ``count`` accept decisions (one transaction each) cycling over ``suggestion_ids``; return count.

    Each comment is ``"<reviewer>#<i>"`` so a test can check that every decision is there exactly once.
    """
    from db import repository as repo
    from db.session import init_db, session_scope

    engine = init_db(url)
    for i in range(count):
        with session_scope(engine) as session:
            repo.record_decision(
                session,
                suggestion_id=suggestion_ids[i % len(suggestion_ids)],
                reviewer=reviewer,
                decision="accept",
                comment=f"{reviewer}#{i}",
            )
    return count


def record_forever(url: str, suggestion_ids: list[int], reviewer: str, ready_file: str) -> None:
    """Record decisions in a loop until killed; touch ``ready_file`` after the first commit."""
    from db import repository as repo
    from db.session import init_db, session_scope

    engine = init_db(url)
    i = 0
    while True:
        with session_scope(engine) as session:
            repo.record_decision(
                session,
                suggestion_id=suggestion_ids[i % len(suggestion_ids)],
                reviewer=reviewer,
                decision="correct" if i % 3 == 0 else "accept",
                corrected_label="PROC" if i % 3 == 0 else None,
                comment=f"{reviewer}#{i}" + "x" * (i % 50) * 20,
            )
        if i == 0:
            Path(ready_file).touch()
        i += 1


# ---------------------------------------------------------------------------------------------------- PostgreSQL


@dataclass
class PostgresServer:
    """A running throwaway cluster."""

    host: str
    port: int
    data_dir: Path
    bin_dir: Path
    as_user: str | None

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3) of a database on this server."""
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        """Create a fresh database and return its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host={self.host} port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')  # a generated identifier, not input
        return self.url(name)

    def stop(self) -> None:
        """Stop the server and delete its files."""
        _run_pg(self, [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"], check=False)
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def _run_pg(server_or_user: Any, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    user = server_or_user.as_user if isinstance(server_or_user, PostgresServer) else server_or_user
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)


def _find_pg_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


_server: PostgresServer | None = None
_server_error: str | None = None


def postgres_server() -> tuple[PostgresServer | None, str | None]:
    """Start (once per process) a throwaway PostgreSQL cluster in a temp folder on a free port.

    Returns:
        ``(server, None)``, or ``(None, reason)`` when it cannot run here (no binaries, no driver, no way to
        run as a non-root user, start failure); tests then skip with the reason.
    """
    global _server, _server_error
    if _server is not None or _server_error is not None:
        return _server, _server_error
    if os.environ.get("CLINICAL_NLP_SKIP_PG"):
        _server_error = "disabled by CLINICAL_NLP_SKIP_PG"
        return None, _server_error
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _server_error = "psycopg (v3) is not installed"
        return None, _server_error
    bin_dir = _find_pg_bin()
    if bin_dir is None:
        _server_error = "PostgreSQL server binaries (initdb, pg_ctl) not found"
        return None, _server_error
    as_user = None
    if os.geteuid() == 0:
        # initdb refuses to run as root; Debian's package creates a 'postgres' user.
        try:
            import pwd

            pwd.getpwnam("postgres")
            as_user = "postgres"
        except KeyError:
            _server_error = "running as root and there is no 'postgres' user to run the server"
            return None, _server_error
    root = Path(tempfile.mkdtemp(prefix="clinical-nlp-pg-"))
    data_dir = root / "data"
    if as_user is not None:
        shutil.chown(root, user=as_user)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = PostgresServer("127.0.0.1", port, data_dir, bin_dir, as_user)
    try:
        _run_pg(
            as_user,
            [str(bin_dir / "initdb"), "-D", str(data_dir), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"],
        )
        opts = f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off -c max_connections=100"
        _run_pg(
            as_user,
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data_dir),
                "-o",
                opts,
                "-l",
                str(root / "log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        _server_error = f"could not start a throwaway PostgreSQL: {detail.strip().splitlines()[-1:]}"
        shutil.rmtree(root, ignore_errors=True)
        return None, _server_error
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    _server = server
    atexit.register(server.stop)
    return _server, None


# ---------------------------------------------------------------------------------------------------- scale


def seed_bulk_sqlite(path: str | Path, n_notes: int, per_note: int, reviewers: int) -> int:
    """Fill a migrated SQLite file fast with raw bulk inserts: ``n_notes`` analysed notes of ``per_note``
    entities, each decided by ``reviewers`` reviewers. Returns the number of decisions."""
    import hashlib
    import json
    import sqlite3

    from db.models import utcnow

    words = [f"term{i:03d}" for i in range(per_note)]
    now = utcnow().isoformat(sep=" ")
    con = sqlite3.connect(path)
    with con:
        con.executemany(
            "INSERT INTO notes (id, sha256, text, created_at) VALUES (?, ?, ?, ?)",
            (
                (i + 1, hashlib.sha256(str(i).encode()).hexdigest(), f"{i} " + " ".join(words), now)
                for i in range(n_notes)
            ),
        )
        con.executemany(
            "INSERT INTO analyses (id, note_id, external_id, models, timings_ms, result, ner_version, created_at) "
            "VALUES (?, ?, ?, ?, '{}', '{}', 'v1', ?)",
            ((i + 1, i + 1, f"n{i}", json.dumps({"ner": "v1"}), now) for i in range(n_notes)),
        )

        def suggestions():  # type: ignore[no-untyped-def]
            for i in range(n_notes):
                offset = len(f"{i} ")
                for j, word in enumerate(words):
                    start = offset + j * (len(word) + 1)
                    yield (i * per_note + j + 1, i + 1, j, start, start + len(word), word, now)

        con.executemany(
            'INSERT INTO suggestions (id, analysis_id, position, start, "end", text, label, score, assertion, '
            "traits, codes, origin, created_at) VALUES (?, ?, ?, ?, ?, ?, 'DIAG', 0.5, 'present', '[]', '[]', "
            "'model', ?)",
            suggestions(),
        )

        def decisions():  # type: ignore[no-untyped-def]
            for sid in range(1, n_notes * per_note + 1):
                for r in range(reviewers):
                    verdict = "reject" if (sid + r) % 4 == 0 else "accept"
                    yield (sid, (sid - 1) // per_note + 1, verdict, f"r{r}", now)

        con.executemany(
            "INSERT INTO decisions (suggestion_id, analysis_id, target, decision, reviewer, model_version, "
            "created_at) VALUES (?, ?, 'entity', ?, ?, 'v1', ?)",
            decisions(),
        )
    con.close()
    return n_notes * per_note * reviewers


def export_peak_memory(url: str, out_dir: str, fmt: str = "jsonl", materialise: bool = False) -> dict[str, Any]:
    """Export in this process and report the peak resident memory growth it caused (Linux ``VmHWM``).

    Run it in a fresh subprocess, so the baseline is this process after its imports and nothing else.
    ``materialise=True`` measures the counterfactual instead: every record built in memory before writing.
    """
    from db.export import export_dataset
    from db.session import init_db, session_scope
    from engine.deid.export import default_deidentifier

    engine = init_db(url)
    # Exports are de-identified by default (issue 22): the de-identifier's one-time load (~50 MB of lexicon and
    # tagger) is a fixed cost, not growth with the export, so it is loaded before the baseline.
    default_deidentifier()
    with session_scope(engine, write=False) as session:
        session.execute(select_one())  # open the connection before the baseline
        # ru_maxrss would be useless here: Linux carries it over from the parent across fork and exec. VmHWM
        # (this process's own peak) is reset to the current size first where the kernel allows it; otherwise
        # the growth reported can only be overstated, never understated.
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")
        before = _proc_status_kib("VmRSS")
        started = time.perf_counter()
        if materialise:
            from db.export import ExportOptions, iter_documents

            held = list(iter_documents(session, options=ExportOptions(include_silver=True, conflicts="flag")))
        manifest = export_dataset(session, fmt, out_dir, include_silver=True, conflicts="flag")
        seconds = time.perf_counter() - started
        peak = _proc_status_kib("VmHWM")
        if materialise:
            del held
    return {
        "rss_growth_bytes": max(peak - before, 0) * 1024,
        "rss_before_bytes": before * 1024,
        "seconds": seconds,
        "counts": manifest.counts,
        "bytes_written": sum(f["bytes"] for f in manifest.files.values()),
    }


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def select_one():  # type: ignore[no-untyped-def]
    """``SELECT 1`` (opens a session's connection)."""
    from sqlalchemy import literal, select

    return select(literal(1))
