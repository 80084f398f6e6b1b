"""Retraining end to end: decisions in a real SQLite store, exported, fine-tuned from the committed NER model on CPU,
gated, registered, activated, rolled back.

The notes come from templates with invented drug and test names that the committed model does not know; a
simulated reviewer compares each model suggestion with the template's gold and accepts, corrects, rejects or adds
through ``db.repository``, exactly as the app records decisions. A second reviewer whose labels are shuffled
produces the corrupted feedback that the gate must refuse.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from engine import versions
from engine.settings import DEFAULT_MODEL_DIR, Settings
from engine.training.feedback_data import is_frozen_test, note_hash
from engine.training.retrain import RetrainConfig, retrain
from engine.types import LABELS

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "retrain"
BASE_DATA = f"brat:{FIXTURES / 'base'}:identity"

DRUGS = ["velbrotane", "cortimexil", "zanufloxin", "pralimdocet", "ostervane", "quenlitrex", "dapravine",
         "morbutazol", "tilavexor", "hexaprolin", "nuvomatide", "sorelicin", "brivalotam", "fenquidor"]
TESTS = ["Harlow index", "Brennan assay", "Kestrel panel", "Morrow score", "Lindqvist test", "Oduya screen"]
CONDITIONS = ["hypertension", "pneumonia", "atrial fibrillation", "migraine", "gout", "asthma", "anemia",
              "cellulitis", "heart failure", "pancreatitis"]
ANATOMY = ["liver", "left lung", "right kidney", "spleen", "thyroid", "pancreas"]
TEMPLATES = [
    "A {age}-year-old {sex} with [[{cond}|DIAG]] was started on [[{drug}|MED]] {dose} mg daily.",
    "The [[{test}|TEST]] was abnormal, so [[{drug}|MED]] was added for [[{cond}|DIAG]].",
    "[[{test}|TEST]] of the [[{anat}|ANAT]] was repeated after [[{drug}|MED]] was stopped.",
    "She was treated with [[{drug}|MED]] {dose} mg for [[{cond}|DIAG]]; the [[{test}|TEST]] improved.",
    "He received [[{drug}|MED]] and [[{drug2}|MED]]; a [[{test}|TEST]] showed no [[{cond}|DIAG]].",
]
N_NOTES = 40
REVIEWER = "dr-test"


def _render(marked: str) -> tuple[str, list[tuple[int, int, str]]]:
    import re

    text, spans, pos = "", [], 0
    for m in re.finditer(r"\[\[(.+?)\|(\w+)\]\]", marked):
        text += marked[pos : m.start()]
        start = len(text)
        text += m.group(1)
        spans.append((start, len(text), m.group(2)))
        pos = m.end()
    return text + marked[pos:], spans


def make_notes(n: int = N_NOTES, seed: int = 7) -> list[tuple[str, str, list[tuple[int, int, str]]]]:
    """``(id, text, gold spans)`` of templated notes; two template sentences per note."""
    rng = random.Random(seed)
    notes = []
    for i in range(n):
        parts = []
        for _ in range(2):
            drug, drug2 = rng.sample(DRUGS, 2)
            parts.append(rng.choice(TEMPLATES).format(
                age=rng.randint(20, 90), sex=rng.choice(["man", "woman"]), cond=rng.choice(CONDITIONS),
                drug=drug, drug2=drug2, dose=rng.choice([5, 10, 20, 40, 250]), test=rng.choice(TESTS),
                anat=rng.choice(ANATOMY),
            ))
        text, spans = _render(" ".join(parts))
        notes.append((f"note-{i:02d}", text, spans))
    return notes


def review(session, analysis, gold: list[tuple[int, int, str]]) -> None:
    """A reviewer who knows ``gold``: accept, correct the label or span, reject, and add what the model missed."""
    from db.repository import add_missed_entity, record_decision

    remaining = list(gold)
    for sug in list(analysis.suggestions):
        exact = next((g for g in remaining if (g[0], g[1]) == (sug.start, sug.end)), None)
        overlap = exact or next((g for g in remaining if g[0] < sug.end and sug.start < g[1]), None)
        if overlap is None:
            record_decision(session, suggestion_id=sug.id, reviewer=REVIEWER, decision="reject")
            continue
        remaining.remove(overlap)
        if overlap == (sug.start, sug.end, sug.label):
            record_decision(session, suggestion_id=sug.id, reviewer=REVIEWER, decision="accept")
        else:
            record_decision(session, suggestion_id=sug.id, reviewer=REVIEWER, decision="correct",
                            corrected_start=overlap[0], corrected_end=overlap[1], corrected_label=overlap[2])
    for start, end, label in remaining:
        add_missed_entity(session, analysis_id=analysis.id, start=start, end=end, label=label, reviewer=REVIEWER)


def shuffled(gold: list[tuple[int, int, str]], rng: random.Random) -> list[tuple[int, int, str]]:
    """The same spans with every label replaced by a different one (a corrupted reviewer)."""
    return [(s, e, rng.choice([lab for lab in LABELS if lab != label])) for s, e, label in gold]


def build_store(tmp: Path, notes, base_predictions, corrupt: bool) -> Path:
    """A real SQLite feedback store with the model's analyses and the reviewer's decisions; returns the export."""
    from db.export import export_dataset
    from db.repository import save_analysis, save_note
    from db.session import init_db, session_scope

    engine = init_db(f"sqlite:///{tmp / ('corrupt' if corrupt else 'good')}.sqlite")
    rng = random.Random(3)
    with session_scope(engine) as session:
        for (note_id, text, gold), spans in zip(notes, base_predictions, strict=True):
            note = save_note(session, text, source=note_id)
            result = {"id": note_id, "entities": [{"start": s.start, "end": s.end, "text": text[s.start : s.end],
                                                   "label": s.label, "score": s.score} for s in spans],
                      "models": {"ner": "base"}}
            analysis = save_analysis(session, note, result)
            review(session, analysis, shuffled(gold, rng) if corrupt else gold)
    export = tmp / f"{'corrupt' if corrupt else 'good'}-decisions.jsonl"
    with session_scope(engine, write=False) as session, export.open("w", encoding="utf-8") as handle:
        manifest = export_dataset(session, "jsonl", stream=handle, include_silver=True)
    assert manifest.counts  # the export describes what it wrote
    engine.dispose()
    return export


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Notes, the committed model's predictions on them, and good and corrupted decision exports."""
    from engine.ner import load_folder

    if not all((DEFAULT_MODEL_DIR / stage / "config.json").is_file() for stage in versions.STAGES):
        pytest.skip("the committed default model set (ner/ and summarizer/) is not there")
    tmp = tmp_path_factory.mktemp("retrain")
    notes = make_notes()
    base_stage = load_folder(DEFAULT_MODEL_DIR / "ner", Settings(), device="cpu")
    base_predictions = base_stage.predict([text for _, text, _ in notes])
    return {
        "tmp": tmp,
        "notes": notes,
        "base_predictions": base_predictions,
        "good": build_store(tmp, notes, base_predictions, corrupt=False),
        "corrupt": build_store(tmp, notes, base_predictions, corrupt=True),
    }


CONFIG = dict(epochs=3, lr=2e-4, batch_size=8, feedback_weight=3, base_dev_count=4, margin=0.05, min_support=10,
              device="cpu", seed=13)


def _registry(monkeypatch, tmp: Path, name: str) -> Settings:
    registry = tmp / name
    monkeypatch.setenv("CLINICAL_NLP_REGISTRY_DIR", str(registry))
    monkeypatch.delenv("CLINICAL_NLP_MODEL_DIR", raising=False)
    return Settings().with_overrides(registry_dir=registry)


def _pipeline_spans(texts):
    from engine.pipeline import load_pipeline

    return load_pipeline(device="cpu").stage("ner").predict(texts)


def test_export_holds_the_frozen_split(world):
    notes = [json.loads(line) for line in world["good"].read_text(encoding="utf-8").splitlines()]
    assert len(notes) == N_NOTES
    test_notes = [n for n in notes if is_frozen_test(note_hash(n["text"]))]
    assert 3 <= len(test_notes) <= 16
    decisions = {d["decision"] for n in notes for e in n["entities"] for d in e["decisions"]}
    assert {"accept", "add"} <= decisions


def test_retrain_promotes_a_better_model_and_rollback_restores_predictions(world, monkeypatch):
    settings = _registry(monkeypatch, world["tmp"], "registry-good")
    texts = [text for _, text, _ in world["notes"]]
    progress: list[float] = []
    report = retrain(world["good"], base_data=BASE_DATA, config=RetrainConfig(**CONFIG), settings=settings,
                     progress=lambda f, m: progress.append(f))

    # Promoted: better on the frozen test notes, not worse on the base dev set, and now active.
    active_f1 = report.metrics["active"]["feedback_test"]["overall"]["f1"]
    candidate_f1 = report.metrics["candidate"]["feedback_test"]["overall"]["f1"]
    assert candidate_f1 > active_f1, report.to_text()
    assert report.promoted and not report.activated, report.to_text()
    assert report.parent == versions.BASE and report.reasons[0].startswith("promoted")
    # Promoted but not activated: the candidate has no audit of its own yet (engine.audit.gate); a person
    # activates it after the audit, or overrides the gate with a recorded reason, as here.
    assert any("audit gate closed" in r and "no audit of this model set" in r for r in report.reasons)
    assert versions.active_version(settings) == versions.BASE
    versions.activate(settings, report.version, override_audit="test: synthetic feedback, audit not run")
    assert versions.read_registry(settings)["audit_log"][-1]["override"].startswith("test: synthetic")
    assert progress[-1] == 1.0 and progress == sorted(progress)
    assert report.data["feedback_test_notes"] + report.data["feedback_train_notes"] == N_NOTES
    assert report.data["base_dev_docs"] == 4

    # Registered with lineage, data hash, metrics and training configuration; the folder is a full model set.
    info = versions.get_version(settings, report.version)
    assert (info.parent, info.status, info.data_hash) == (versions.BASE, "promoted", report.data_hash)
    assert info.metrics["feedback_test"]["overall"]["f1"] == candidate_f1
    assert info.training_config["epochs"] == 3 and info.training_config["ner"]["device"] == "cpu"
    folder = versions.version_model_dir(settings, report.version)
    assert json.loads((folder / "ner" / "config.json").read_text())["version"] == report.version
    assert (folder / "summarizer" / "config.json").is_file()
    assert info.stages["summarizer"].startswith("copied from base")
    assert "PROMOTED" in (folder / "REPORT.txt").read_text()
    assert versions.active_version(settings) == report.version

    # The engine now runs the new version without being told, and it predicts differently.
    promoted = _pipeline_spans(texts)
    assert promoted != world["base_predictions"]

    # Rollback restores the previous version's predictions exactly (spans, labels and scores).
    assert versions.main(["--registry-dir", str(settings.registry_dir), "rollback"]) == 0
    assert versions.active_version(settings) == versions.BASE
    assert _pipeline_spans(texts) == world["base_predictions"]
    # And activating the retrained version again brings its predictions back exactly.
    versions.activate(settings, report.version, override_audit="test: re-activation")
    assert _pipeline_spans(texts) == promoted


def test_shuffled_labels_are_refused_by_the_gate(world, monkeypatch, capsys):
    from engine.training.retrain import main

    settings = _registry(monkeypatch, world["tmp"], "registry-corrupt")
    report_path = world["tmp"] / "corrupt-report.json"
    argv = ["--decisions", str(world["corrupt"]), "--base-data", BASE_DATA, "--report", str(report_path),
            "--progress-file", str(world["tmp"] / "progress.json")]
    for key, flag in (("epochs", "--epochs"), ("lr", "--lr"), ("batch_size", "--batch-size"),
                      ("feedback_weight", "--feedback-weight"), ("base_dev_count", "--base-dev-count"),
                      ("margin", "--margin"), ("min_support", "--min-support"), ("device", "--device"),
                      ("seed", "--seed")):
        argv += [flag, str(CONFIG[key])]
    assert main(argv) == 3  # refused
    summary = json.loads(capsys.readouterr().out)
    report = json.loads(report_path.read_text())
    assert report["decision"] == "refused" and not summary["promoted"] and not summary["activated"]
    failed = [c for c in report["checks"] if c["gated"] and not c["passed"]]
    assert failed and all(c["candidate"] < c["active"] - CONFIG["margin"] for c in failed)
    assert any(c["eval_set"] == "base_dev" for c in failed), report_path.with_suffix(".txt").read_text()
    assert "REFUSED" in report_path.with_suffix(".txt").read_text()
    progress = json.loads((world["tmp"] / "progress.json").read_text())
    assert progress["state"] == "done" and progress["promoted"] is False
    # The refused version is kept for inspection but the active model is untouched.
    assert versions.active_version(settings) == versions.BASE
    assert versions.get_version(settings, summary["version"]).status == "refused"
    assert _pipeline_spans([t for _, t, _ in world["notes"][:5]]) == world["base_predictions"][:5]


FILLERS = ["The patient was seen in the outpatient clinic today.", "Vital signs were recorded by the nurse.",
           "Follow-up is scheduled in four weeks."]
SUMMARY_NOTES = 20
"""Notes given summaries (6 of them fall in the frozen test split), few enough to keep the summarizer run short."""


def test_summary_labels_alone_retrain_and_gate_the_summarizer(world, monkeypatch):
    """Reviewers keep the treatment sentences and drop the boilerplate; only the summarizer is retrained."""
    from db.export import export_dataset
    from db.repository import record_sentence_decision, save_note, save_summary
    from db.session import init_db, session_scope
    from engine.sentences import split_sentences
    from engine.summarizer import load as load_summarizer

    if not (DEFAULT_MODEL_DIR / "summarizer" / "config.json").is_file():
        pytest.skip("the committed default summarizer is not there")
    settings = _registry(monkeypatch, world["tmp"], "registry-summary")
    summarizer = load_summarizer(Settings().with_overrides(model_dir=DEFAULT_MODEL_DIR, device="cpu"))
    engine = init_db(f"sqlite:///{world['tmp'] / 'summary.sqlite'}")
    with session_scope(engine) as session:
        for i, (note_id, text, _) in enumerate(world["notes"][:SUMMARY_NOTES]):
            text = f"{FILLERS[i % 3]} {text} {FILLERS[(i + 1) % 3]}"
            note = save_note(session, text, source=note_id)
            result = summarizer.summarize(text, k=len(split_sentences(text)))
            rows = save_summary(session, note, {"id": note_id, "sentences": [s.to_dict() for s in result]},
                                model_version=summarizer.version)
            for row in rows:
                keep = any(drug in row.text for drug in DRUGS)
                record_sentence_decision(session, sentence_id=row.id, reviewer=REVIEWER,
                                         decision="keep" if keep else "drop")
    labels = world["tmp"] / "summary-labels.jsonl"
    empty = world["tmp"] / "no-decisions.jsonl"
    with session_scope(engine, write=False) as session, labels.open("w", encoding="utf-8") as handle:
        export_dataset(session, "summary_jsonl", stream=handle)
    with session_scope(engine, write=False) as session, empty.open("w", encoding="utf-8") as handle:
        export_dataset(session, "jsonl", stream=handle, include_silver=True)
    engine.dispose()

    before = (DEFAULT_MODEL_DIR / "ner" / "config.json").read_bytes()
    report = retrain(empty, summary_labels=labels, base_data="none", config=RetrainConfig(**CONFIG),
                     settings=settings)
    assert report.stages["summarizer"] == "trained" and report.stages["ner"].startswith("copied from base")
    (check,) = report.checks
    assert check.eval_set == "summary_test" and check.support > 0
    assert report.promoted == (check.candidate >= check.active - CONFIG["margin"])
    assert report.metrics["candidate"]["summary_test"]["notes"] == report.data["sentence_notes_test"]
    folder = versions.version_model_dir(settings, report.version)
    config = json.loads((folder / "summarizer" / "config.json").read_text())
    assert config["version"] == report.version and config["parent_version"] == versions.BASE
    # The NER stage is the parent's, hard-linked or copied, and the parent's files are untouched.
    assert (folder / "ner" / "config.json").read_bytes() == before
    assert (DEFAULT_MODEL_DIR / "ner" / "config.json").read_bytes() == before
