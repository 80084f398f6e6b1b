"""Assertion stage: hand-written sentences per rule family, note-level section traits, rule files, the CLI verb,
and a small slice of the shared-data evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.assertion import AssertionStage, expand, load
from engine.errors import EngineError, ErrorCode
from engine.sections import load as load_sections
from engine.settings import RULES_DIR, Settings
from engine.types import TRAITS

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "assertion"


def _cases() -> list[pytest.param]:
    params = []
    for lineno, line in enumerate((FIXTURES / "sentences.tsv").read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        family, assertion, trigger, sentence = line.split("\t")
        marks = []
        if family.startswith("known-miss:"):
            marks.append(pytest.mark.xfail(strict=True, reason="known rule gap"))
        params.append(pytest.param(assertion, trigger, sentence, id=f"{family}:{lineno}", marks=marks))
    return params


@pytest.fixture(scope="module")
def stage() -> AssertionStage:
    return load(Settings())


@pytest.fixture(scope="module")
def sections():
    return load_sections(Settings())


def _judge(stage: AssertionStage, sections, marked: str):
    start = marked.index("[[")
    end = marked.index("]]") - 2
    text = marked.replace("[[", "").replace("]]", "")
    return text, stage.judge(text, [(start, end)], sections.detect(text))[0]


@pytest.mark.parametrize(("assertion", "trigger", "sentence"), _cases())
def test_rule_family_sentence(stage, sections, assertion: str, trigger: str, sentence: str) -> None:
    text, judgement = _judge(stage, sections, sentence)
    assert judgement.assertion == assertion, (judgement.traits, judgement.trigger)
    if trigger == "-":
        assert judgement.trigger is None
    elif trigger != "*":
        assert judgement.trigger == trigger
        assert trigger in text  # the trigger is quoted from the note as written


def test_fixture_covers_every_rule_family() -> None:
    families = {p.id.split(":")[0] for p in _cases()}
    for needed in ("negation-forward", "negation-backward", "negation-list", "negation-pseudo",
                   "negation-termination", "possible", "hypothetical", "historical", "family", "present"):
        assert needed in families


def test_note_sections_give_traits_and_header_triggers(stage, sections) -> None:
    text = (FIXTURES / "note.txt").read_text(encoding="utf-8")
    phrases = ["chest pain for", "fever", "cough", "Hypertension", "Appendectomy", "coronary artery disease",
               "breast cancer", "Lisinopril", "headache", "wheezes", "unstable angina", "chest pain worsens"]
    spans = []
    for phrase in phrases:
        start = text.index(phrase)
        word = phrase.split(" worsens")[0].split(" for")[0]
        spans.append((start, start + len(word)))
    got = stage.judge(text, spans, sections.detect(text))
    by_phrase = {p: (j.assertion, j.trigger) for p, j in zip(phrases, got, strict=True)}
    assert by_phrase["chest pain for"] == ("present", None)
    assert by_phrase["fever"] == ("negated", "denies")
    assert by_phrase["cough"] == ("negated", "denies")
    assert by_phrase["Hypertension"] == ("historical", "PAST MEDICAL HISTORY")
    assert by_phrase["Appendectomy"] == ("historical", "PAST SURGICAL HISTORY")
    assert by_phrase["coronary artery disease"][0] == "family"
    assert by_phrase["breast cancer"][0] == "family"
    assert by_phrase["Lisinopril"] == ("present", None)
    assert by_phrase["headache"] == ("negated", "Negative for")
    assert by_phrase["wheezes"] == ("negated", "no")
    assert by_phrase["unstable angina"] == ("possible", "Possible")
    assert by_phrase["chest pain worsens"] == ("hypothetical", "Return if")


def test_traits_in_contract_order_and_one_judgement_per_span(stage) -> None:
    text = "No family history of colon cancer. Possible pneumonia. History of MI."
    spans = [(21, 33), (44, 53), (66, 68), (0, 2)]
    got = stage.judge(text, spans, None)
    assert len(got) == len(spans)
    assert got[0].traits == ["negated", "family"]
    assert got[0].trigger == "No"
    for judgement in got:
        assert judgement.traits == [t for t in TRAITS if t in judgement.traits]
    assert stage.judge(text, [], None) == []


def test_span_across_sentence_end_and_at_text_edges(stage) -> None:
    text = "No fever.\nCough"
    got = stage.judge(text, [(3, 8), (10, 15), (0, len(text))], None)
    assert got[0].assertion == "negated"
    assert got[1].assertion == "present"
    assert len(got) == 3


def test_version_names_the_rules(stage) -> None:
    assert stage.version.startswith("context-rules-")


def test_expand_braces() -> None:
    assert expand("{a|b} c") == ["a c", "b c"]
    assert expand("x {y |}z") == ["x y z", "x z"]


def _rules_dir(tmp_path: Path, triggers: str) -> Settings:
    (tmp_path / "assertion_triggers.tsv").write_text(triggers, encoding="utf-8")
    (tmp_path / "assertion_sections.tsv").write_text(
        (RULES_DIR / "assertion_sections.tsv").read_text(encoding="utf-8"), encoding="utf-8"
    )
    return Settings().with_overrides(rules_dir=tmp_path)


def test_bad_rule_file_is_refused_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(EngineError) as info:
        load(_rules_dir(tmp_path, "# comment\nno\tnegated\tsideways\t0\n"))
    assert info.value.code is ErrorCode.MODEL_INVALID
    assert "assertion_triggers.tsv:2" in str(info.value)
    with pytest.raises(EngineError) as info:
        load(Settings().with_overrides(rules_dir=tmp_path / "missing"))
    assert info.value.code is ErrorCode.MODEL_NOT_FOUND


def test_rules_are_data(tmp_path: Path) -> None:
    settings = _rules_dir(tmp_path, "nope\tnegated\tforward\t0\n")
    custom = load(settings)
    text = "nope fever. no cough."
    got = custom.judge(text, [(5, 10), (15, 20)], None)
    assert [j.assertion for j in got] == ["negated", "present"]
    assert custom.version != load(Settings()).version


# Planned versus past: a date alone dates a past event; a future cue, a hypothetical trigger or a plan section makes
# it a plan's date, unless a past cue ("showed", "underwent", "was done") is nearer the finding.
DATED = [
    ("Plan: repeat [[colonoscopy]] in March.", ["hypothetical"]),
    ("Will schedule repeat [[colonoscopy]] in March.", ["hypothetical"]),
    ("[[Colonoscopy]] in March showed two polyps.", ["historical"]),
    ("Follow-up [[CT]] in March showed resolution of the hematoma.", ["historical"]),
    ("She was admitted in March with [[pneumonia]].", ["historical"]),
    ("Repeat [[bone density scan]] due in September.", ["hypothetical"]),
    ("[[Hip replacement]] planned for August.", ["hypothetical"]),
    ("He is due for a [[screening colonoscopy]] in December.", ["hypothetical"]),
    ("Patient had a [[colonoscopy]] in 2019 and will repeat colonoscopy in March.", ["historical"]),
    ("Patient had a colonoscopy in 2019 and will repeat [[colonoscopy]] in March.", ["hypothetical"]),
    ("She underwent [[cholecystectomy]] in May 2021.", ["historical"]),
    ("Recheck [[TSH]] in 6 weeks.", ["hypothetical"]),
    ("Continue [[lisinopril]] and recheck BMP in 1 week.", []),
    ("Return in two weeks for [[suture removal]].", ["hypothetical"]),
    ("[[Stress test]] next month.", ["hypothetical"]),
    ("The next day she developed [[fever]].", []),
    ("Blood pressure improved from 160/95 to 130/80 on [[amlodipine]].", []),
]


@pytest.mark.parametrize(("sentence", "traits"), DATED)
def test_planned_versus_past_dates(stage, sections, sentence: str, traits: list[str]) -> None:
    _, judgement = _judge(stage, sections, sentence)
    assert judgement.traits == traits, judgement.trigger


def test_a_date_in_the_plan_section_is_planned(stage, sections) -> None:
    text = "HPI: Anemia.\nPLAN: Iron studies in January. Continue aspirin. CT in March showed a cyst."
    spans = [(text.index(w), text.index(w) + len(w)) for w in ("Iron studies", "aspirin", "CT")]
    got = stage.judge(text, spans, sections.detect(text))
    expected = [(["hypothetical"], "PLAN"), ([], None), (["historical"], "in March")]
    assert [(j.traits, j.trigger) for j in got] == expected


@pytest.mark.parametrize(
    ("sentence", "traits"),
    [
        ("[[Pneumonia]], now resolved.", ["historical"]),
        ("History of [[pneumonia]], now resolved.", ["historical"]),
        ("Her [[acute kidney injury]] has resolved.", ["historical"]),
        ("[[Cellulitis]] resolved after a course of cephalexin.", ["historical"]),
        ("Resolution of [[atrial fibrillation]] after cardioversion.", ["historical"]),
        ("[[Headache]] has not resolved.", []),
        ("Persistent [[cough]], not yet resolved.", []),
        ("[[Rash]] is resolving.", []),
        ("[[Rash]] partially resolved.", []),
        ("No [[chest pain]] today.", ["negated"]),
    ],
)
def test_resolved_is_historical_not_negated(stage, sections, sentence: str, traits: list[str]) -> None:
    _, judgement = _judge(stage, sections, sentence)
    assert judgement.traits == traits, judgement.trigger


def test_time_cues_are_rule_rows(tmp_path: Path) -> None:
    rows = "in march\tdate\tbidirectional\t6\nsoon\tfuture\tbidirectional\t6\nseen\tpast\tbidirectional\t6\n"
    custom = load(_rules_dir(tmp_path, rows))
    texts = ["MRI in March.", "MRI soon in March.", "MRI seen soon in March."]  # the nearer cue decides
    got = [custom.judge(t, [(0, 3)], None)[0] for t in texts]
    assert [(j.traits, j.trigger) for j in got] == [
        (["historical"], "in March"), (["hypothetical"], "soon"), (["historical"], "in March"),
    ]
    with pytest.raises(EngineError) as info:
        load(_rules_dir(tmp_path, "soon\tfuture\tterminate\t0\n"))  # a time cue sets a scope, never ends one
    assert info.value.code is ErrorCode.MODEL_INVALID


def test_assert_verb_through_the_cli(tmp_path: Path) -> None:
    lines = [
        {"id": "a", "text": "Patient denies chest pain.", "start": 15, "end": 25},
        "not json",
        {"id": "b", "text": "Mother had breast cancer.", "start": 11, "end": 24},
        {"id": "c", "text": "short", "start": 3, "end": 99},
        {"id": "d", "text": "Return if fever develops.", "start": 10, "end": 15},
    ]
    path = tmp_path / "spans.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "assert", "--jsonl", str(path), "--device", "cpu"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert out == [
        {"id": "a", "assertion": "negated", "traits": ["negated"], "trigger": "denies"},
        {"id": "b", "assertion": "family", "traits": ["family"], "trigger": "Mother"},
        {"id": "d", "assertion": "hypothetical", "traits": ["hypothetical"], "trigger": "Return if"},
    ]
    assert f"{path}:2" in proc.stderr and "invalid JSON" in proc.stderr
    assert f"{path}:4" in proc.stderr and "does not fit" in proc.stderr


@pytest.mark.shared_data
def test_evaluation_slice_beats_threshold(shared_data: Path) -> None:
    from engine.evaluation.assertion import evaluate, format_table

    report = evaluate(shared_data, datasets=["maccrobat"], systems=["ours"], limit=20)
    scores = report["maccrobat"]["systems"]["ours"]
    # Measured 0.78 on these 20 reports when the rules were written; a drop below 0.73 is a regression.
    assert scores["negated"]["f1"] >= 0.73, format_table(report)
    assert report["maccrobat"]["spans"] > 500


def test_evaluation_on_hand_written_sentences_side_by_side() -> None:
    from engine.evaluation.assertion import evaluate

    report = evaluate(Path("unused"), datasets=["sentences"], systems=["ours", "negspacy"])
    entry = report["sentences"]
    assert entry["spans"] == len(_cases())
    ours, negex = entry["systems"]["ours"], entry["systems"]["negspacy"]
    assert set(ours) >= {"negated", "family", "hypothetical", "possible", "historical"}
    # In-sample for our rules (only the known misses fail), so this guards against regressions.
    for trait in ("negated", "family", "hypothetical", "possible", "historical"):
        assert ours[trait]["f1"] >= 0.95, (trait, ours[trait])
    assert ours["negated"]["f1"] > negex["negated"]["f1"]


def test_any_text_and_span_gives_a_valid_judgement(stage, sections) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    pieces = [*"ab .,;:?!\n\t-'/", "no ", "denies ", "history of ", "FAMILY HISTORY: ", "é", "😀"]
    alphabet = st.sampled_from(pieces)

    @settings(max_examples=150, deadline=None)
    @given(st.lists(alphabet, min_size=1, max_size=40).map("".join), st.data())
    def check(text: str, data) -> None:
        spans = data.draw(st.lists(st.tuples(st.integers(0, len(text) - 1), st.integers(1, len(text))), max_size=5))
        spans = [(a, b) for a, b in spans if a < b]
        got = stage.judge(text, spans, sections.detect(text))
        assert len(got) == len(spans)
        for judgement in got:
            assert judgement.traits == [t for t in TRAITS if t in judgement.traits]
            assert (judgement.trigger is None) == (not judgement.traits)
            if judgement.trigger is not None:
                assert judgement.trigger in text

    check()


_WRAPPED_NOTE = (
    "DISCHARGE INSTRUCTIONS:\n"
    "The patient was seen today and is doing well after the procedure. She was\n"
    "told to keep the wound clean and dry and to take her medications exactly as\n"
    "prescribed. Please return to the emergency department if you develop chest\n"
    "pain, shortness of breath, fever or any other concerning symptom at all.\n"
    "She has a long history of poorly controlled hypertension and a history of\n"
    "diabetes mellitus. She denies any recent travel, sick contacts, cough or\n"
    "headache and she was discharged home in stable condition with her family.\n"
)


def _span(text: str, word: str) -> tuple[int, int]:
    start = text.index(word)
    return start, start + len(word)


def test_hard_wrapped_lines_stay_one_sentence(stage, sections) -> None:
    """A fixed-width export breaks sentences over lines: the cue before the break reaches the finding after it."""
    words = ["pain", "shortness of breath", "diabetes mellitus", "headache"]
    got = stage.judge(_WRAPPED_NOTE, [_span(_WRAPPED_NOTE, w) for w in words], sections.detect(_WRAPPED_NOTE))
    assert [j.assertion for j in got] == ["hypothetical", "hypothetical", "historical", "negated"]
    # One span per call (the ``assert`` verb's path) finds the same sentence.
    one = stage.judge(_WRAPPED_NOTE, [_span(_WRAPPED_NOTE, "pain")], sections.detect(_WRAPPED_NOTE))
    assert one[0].assertion == "hypothetical" and one[0].trigger == "return to the emergency department if"


def test_one_item_a_line_keeps_its_line_breaks(stage) -> None:
    """Criteria and problem lists are not wrapped prose: "No ..." on one line does not reach the next item."""
    text = ("No history of seizures or other neurological disease of any kind at all\n"
            "pregnant or breastfeeding women\n"
            "Patients with chronic liver disease or renal failure requiring dialysis\n")
    got = stage.judge(text, [_span(text, "pregnant"), _span(text, "seizures")])
    assert [j.assertion for j in got] == ["present", "negated"]


def test_instruction_lists_and_history_headers(stage, sections) -> None:
    """Issue 20, seventh session: an instructions section's items are conditions to watch for unless their own clause
    says otherwise, and history headers written many ways open a past-history section."""
    note = ("RETURN PRECAUTIONS:\n- chest pain\n- fainting\n"
            "DISCHARGE INSTRUCTIONS:\nYou were seen today for cellulitis.\nNo fever.\n"
            "PREVIOUS OPERATIONS:\nAppendectomy\nPAST CARDIAC HISTORY: Inferior MI.\n")
    words = ["chest pain", "fainting", "cellulitis", "fever", "Appendectomy", "Inferior MI"]
    got = stage.judge(note, [_span(note, w) for w in words], sections.detect(note))
    assert [j.assertion for j in got] == ["hypothetical", "hypothetical", "present", "negated", "historical",
                                          "historical"]
    assert got[0].trigger == "RETURN PRECAUTIONS"
