"""Feedback store on a real database: migrations, repository functions, validation, audit trail, registry.

Every test runs on a fresh SQLite file; the ones taking ``db_url`` also run on a throwaway PostgreSQL cluster
when Debian's server binaries and psycopg are available (skipped with the reason otherwise).
"""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from support.db_testing import NOTE_TEXT, init_only, sample_result

from db import repository as repo
from db.errors import FeedbackCode, FeedbackError
from db.models import AuditLog, Base, Decision, utcnow
from db.session import dispose_engines, get_engine, init_db, session_scope


def _seed(url: str, text_: str = NOTE_TEXT):
    with session_scope(get_engine(url)) as s:
        note = repo.save_note(s, text_, source="test.txt")
        analysis = repo.save_analysis(s, note, sample_result(text_))
        return note.id, analysis.id, [x.id for x in analysis.suggestions]


# ---------------------------------------------------------------------------------------------------- migrations


def _script_head() -> str:
    """The one head revision of db/migrations (two heads would fail here: migrations must stay one line)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from db.session import ALEMBIC_INI

    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(ALEMBIC_INI.parent / "migrations"))
    return ScriptDirectory.from_config(cfg).get_current_head()


def test_migrations_fresh_file_idempotent_and_match_models(tmp_path):
    path = tmp_path / "fresh.sqlite"
    url = f"sqlite:///{path}"
    init_db(url)
    dispose_engines()
    init_db(url)  # a second start on the same file changes nothing
    con = sqlite3.connect(path)
    assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [(_script_head(),)]
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert set(Base.metadata.tables) <= tables
    con.close()

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with get_engine(url).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"migrations and models disagree: {diff}"
    dispose_engines()

    from alembic import command
    from alembic.config import Config

    from db.session import ALEMBIC_INI

    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("sqlalchemy.url", url)
    command.downgrade(cfg, "base")  # the first revision is reversible ...
    con = sqlite3.connect(path)
    assert {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")} <= {
        "alembic_version"
    }
    con.close()
    dispose_engines()
    init_db(url)  # ... and applies again
    with session_scope(get_engine(url)) as s:
        assert repo.save_note(s, NOTE_TEXT).id == 1
    dispose_engines()


def test_processes_starting_together_migrate_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'race.sqlite'}"
    with mp.get_context("spawn").Pool(4) as pool:
        assert pool.map(init_only, [url] * 4) == ["ok"] * 4
    con = sqlite3.connect(tmp_path / "race.sqlite")
    assert con.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# ---------------------------------------------------------------------------------------------------- repository


def test_note_dedup_and_analysis_suggestions(db_url):
    engine = get_engine(db_url)
    with session_scope(engine) as s:
        a = repo.save_note(s, NOTE_TEXT, source="a.txt")
        b = repo.save_note(s, NOTE_TEXT, source="b.txt")
        c = repo.save_note(s, NOTE_TEXT + " ")
        assert a.id == b.id != c.id
        assert a.source == "a.txt"
        result = sample_result()
        analysis = repo.save_analysis(s, a, result)
        aid = analysis.id
    with session_scope(engine, write=False) as s:
        got = repo.get_analysis(s, aid)
        assert got.result == result
        assert got.ner_version == "ner-test-1"
        sugg = repo.list_suggestions(s, aid)
        assert [(x.start, x.end, x.label) for x in sugg] == [
            (e["start"], e["end"], e["label"]) for e in result["entities"]
        ]
        assert all(NOTE_TEXT[x.start : x.end] == x.text for x in sugg)
        assert sugg[0].codes[0]["code"] == "I21.9"
        assert repo.get_analysis(s, 10_000) is None


def test_decisions_history_and_filters(db_url):
    engine = get_engine(db_url)
    _, aid, sids = _seed(db_url)
    with session_scope(engine) as s:
        repo.record_decision(s, suggestion_id=sids[0], reviewer="ann", decision="accept")
        repo.record_decision(s, suggestion_id=sids[0], reviewer="ann", decision="accept", target="code", code="I21.9")
        repo.record_decision(
            s,
            suggestion_id=sids[0],
            reviewer="bob",
            decision="correct",
            target="code",
            code="I21.9",
            corrected_code="i21.4",
            comment="NSTEMI per troponin",
        )
        repo.record_decision(s, suggestion_id=sids[1], reviewer="bob", decision="reject")
        corr = repo.record_decision(
            s,
            suggestion_id=sids[3],
            reviewer="ann",
            decision="correct",
            corrected_end=NOTE_TEXT.index(" daily"),
        )
        start = NOTE_TEXT.index("Start")
        added = repo.add_missed_entity(s, analysis_id=aid, start=start, end=start + 5, label="PROC", reviewer="cy")
    assert corr.corrected_label == "MED" and NOTE_TEXT[corr.corrected_start : corr.corrected_end] == "aspirin 81 mg"
    assert corr.model_version == "ner-test-1"
    with session_scope(engine, write=False) as s:
        views = repo.list_decisions(s)
        assert len(views) == 6
        assert views[0].decision == "add" and views[0].suggestion_id == added.id and views[0].entity_text == "Start"
        assert [v.id for v in views] == sorted((v.id for v in views), reverse=True)
        code_views = [v for v in views if v.target == "code"]
        # code is what was suggested, corrected_code what the reviewer put instead (issue #17 item 6)
        assert {(v.code, v.corrected_code, v.chapter, v.model_version) for v in code_views} == {
            ("I21.9", None, "I", "ICD-10-CM 2025"),
            ("I21.9", "I21.4", "I", "ICD-10-CM 2025"),
        }
        assert {v.id for v in repo.list_decisions(s, reviewer="bob")} == {v.id for v in views if v.reviewer == "bob"}
        assert [v.decision for v in repo.list_decisions(s, decision="reject")] == ["reject"]
        assert {v.label for v in repo.list_decisions(s, label="PROC")} == {"PROC"}
        assert len(repo.list_decisions(s, model_version="ner-test-1")) == 4
        assert len(repo.list_decisions(s, limit=2)) == 2
        now = utcnow()
        assert len(repo.list_decisions(s, since=now - timedelta(minutes=5))) == 6
        assert repo.list_decisions(s, since=now + timedelta(minutes=5)) == []
        assert repo.list_decisions(s, until=(now - timedelta(minutes=5)).isoformat()) == []
        audit = s.scalars(select(AuditLog).where(AuditLog.kind == "decision").order_by(AuditLog.ref_id)).all()
        assert [a.ref_id for a in audit] == sorted(v.id for v in views)
        assert audit[-1].payload["decision"] == "add" and audit[-1].actor == "cy"
        current = repo.latest_decisions(s, aid)
        assert current[(sids[0], "code", "I21.9")].decision == "correct"


def test_summary_sentences_and_decisions(db_url):
    engine = get_engine(db_url)
    first_end = NOTE_TEXT.index("\n")
    second = NOTE_TEXT.index("PLAN")
    summary = {
        "id": "note-1",
        "sentences": [
            {"start": second, "end": len(NOTE_TEXT), "text": NOTE_TEXT[second:], "score": 0.7, "rank": 2},
            {"start": 0, "end": first_end, "text": NOTE_TEXT[:first_end], "score": 0.9, "rank": 1},
        ],
    }
    with session_scope(engine) as s:
        note = repo.save_note(s, NOTE_TEXT)
        rows = repo.save_summary(s, note, summary, model_version="sum-1")
        assert [r.start for r in rows] == [0, second]
        keep = repo.record_sentence_decision(s, sentence_id=rows[0].id, reviewer="ann", decision="keep")
        repo.record_sentence_decision(s, sentence_id=rows[1].id, reviewer="ann", decision="drop", comment="plan")
        assert keep.model_version == "sum-1"
        with pytest.raises(FeedbackError) as err:
            repo.record_sentence_decision(s, sentence_id=rows[0].id, reviewer="ann", decision="maybe")
        assert err.value.code == FeedbackCode.BAD_DECISION
    with session_scope(engine, write=False) as s:
        assert [d.decision for d in repo.list_sentence_decisions(s)] == ["drop", "keep"]
        assert s.scalar(select(func.count()).where(AuditLog.kind == "sentence_decision")) == 2


# ---------------------------------------------------------------------------------------------------- refusals


INVALID = {
    "unknown suggestion": (
        lambda s, ids, aid: repo.record_decision(s, suggestion_id=999_999, reviewer="ann", decision="accept"),
        FeedbackCode.UNKNOWN_SUGGESTION,
    ),
    "bad label": (
        lambda s, ids, aid: repo.record_decision(
            s, suggestion_id=ids[0], reviewer="ann", decision="correct", corrected_label="DISEASE"
        ),
        FeedbackCode.BAD_LABEL,
    ),
    "empty reviewer": (
        lambda s, ids, aid: repo.record_decision(s, suggestion_id=ids[0], reviewer="   ", decision="accept"),
        FeedbackCode.EMPTY_REVIEWER,
    ),
    "unknown decision": (
        lambda s, ids, aid: repo.record_decision(s, suggestion_id=ids[0], reviewer="ann", decision="approve"),
        FeedbackCode.BAD_DECISION,
    ),
    "span outside note": (
        lambda s, ids, aid: repo.record_decision(
            s, suggestion_id=ids[0], reviewer="ann", decision="correct", corrected_end=len(NOTE_TEXT) + 1
        ),
        FeedbackCode.BAD_SPAN,
    ),
    "malformed code": (
        lambda s, ids, aid: repo.record_decision(
            s,
            suggestion_id=ids[0],
            reviewer="ann",
            decision="correct",
            target="code",
            code="I21.9",
            corrected_code="heart attack",
        ),
        FeedbackCode.BAD_CODE,
    ),
    "code not suggested": (
        lambda s, ids, aid: repo.record_decision(
            s, suggestion_id=ids[0], reviewer="ann", decision="accept", target="code", code="E11.9"
        ),
        FeedbackCode.BAD_CODE,
    ),
    "correction changing nothing": (
        lambda s, ids, aid: repo.record_decision(
            s, suggestion_id=ids[0], reviewer="ann", decision="correct", corrected_label="DIAG"
        ),
        FeedbackCode.BAD_INPUT,
    ),
    "missed entity in unknown analysis": (
        lambda s, ids, aid: repo.add_missed_entity(
            s, analysis_id=aid + 100, start=0, end=4, label="DIAG", reviewer="ann"
        ),
        FeedbackCode.UNKNOWN_ANALYSIS,
    ),
    "missed entity already there": (
        lambda s, ids, aid: repo.add_missed_entity(
            s,
            analysis_id=aid,
            start=NOTE_TEXT.index("aspirin"),
            end=NOTE_TEXT.index("aspirin") + 7,
            label="MED",
            reviewer="ann",
        ),
        FeedbackCode.DUPLICATE,
    ),
    "unknown sentence": (
        lambda s, ids, aid: repo.record_sentence_decision(s, sentence_id=12345, reviewer="ann", decision="keep"),
        FeedbackCode.UNKNOWN_SENTENCE,
    ),
    "analysis span text differs": (
        lambda s, ids, aid: repo.save_analysis(
            s,
            repo.save_note(s, NOTE_TEXT),
            {"entities": [{"start": 0, "end": 7, "text": "history", "label": "DIAG"}]},
        ),
        FeedbackCode.BAD_SPAN,
    ),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_input_is_refused_and_nothing_written(db_url, case):
    engine = get_engine(db_url)
    _, aid, sids = _seed(db_url)
    call, code = INVALID[case]
    with session_scope(engine, write=False) as s:
        before = repo.count_rows(s)
    # The caller catches the error and its transaction still commits: nothing may have been added.
    with session_scope(engine) as s:
        with pytest.raises(FeedbackError) as err:
            call(s, sids, aid)
        assert err.value.code == code
        assert str(err.value).startswith(f"[{code.value}]")
    with session_scope(engine, write=False) as s:
        assert repo.count_rows(s) == before


def test_audit_log_is_append_only(db_url):
    engine = get_engine(db_url)
    _, _, sids = _seed(db_url)
    with session_scope(engine) as s:
        repo.record_decision(s, suggestion_id=sids[0], reviewer="ann", decision="accept")
    for stmt in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), session_scope(engine) as s:
            s.execute(text(stmt))
    with session_scope(engine, write=False) as s:
        assert s.scalars(select(AuditLog.actor)).all() == ["ann"]
        assert s.scalar(select(func.count()).select_from(Decision)) == 1


def test_model_registry(db_url):
    engine = get_engine(db_url)
    with session_scope(engine) as s:
        v1 = repo.register_model_version(
            s,
            name="ner-1",
            stage="ner",
            path="/models/ner-1",
            metrics={"f1": 0.61},
            data_hash="aa",
            config={},
            activate=True,
        )
        v2 = repo.register_model_version(
            s,
            name="ner-2",
            stage="ner",
            path="/models/ner-2",
            metrics={"f1": 0.66},
            parent="ner-1",
            data_hash="bb",
            config={"lr": 1e-4},
        )
        repo.register_model_version(
            s, name="sum-1", stage="summarizer", path="/m/s", metrics={}, data_hash=None, config={}, activate=True
        )
        assert repo.active_model_version(s, "ner").id == v1.id
        assert v2.parent_id == v1.id
        repo.activate_model_version(s, v2.id)
        with pytest.raises(FeedbackError) as err:
            repo.register_model_version(s, name="ner-2", stage="ner", path="/x", metrics={}, data_hash=None, config={})
        assert err.value.code == FeedbackCode.DUPLICATE
        with pytest.raises(FeedbackError) as err:
            repo.activate_model_version(s, 4242)
        assert err.value.code == FeedbackCode.UNKNOWN_MODEL_VERSION
    with session_scope(engine, write=False) as s:
        assert repo.active_model_version(s, "ner").name == "ner-2"
        assert repo.active_model_version(s, "summarizer").name == "sum-1"
        assert [v.name for v in repo.list_model_versions(s, "ner")] == ["ner-2", "ner-1"]
        assert sum(v.active for v in repo.list_model_versions(s)) == 2
        kinds = s.scalars(select(AuditLog.kind).order_by(AuditLog.id)).all()
        assert kinds.count("model_activated") == 3 and kinds.count("model_registered") == 3
