"""The NER stage on the committed default model (CPU): offsets, windows, bad input, the HF model it exposes."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import EngineError, ErrorCode
from engine.ner import BIO_LABELS, Encoding, NerStage, annotate, load, make_windows, snap_to_words
from engine.settings import DEFAULT_MODEL_DIR, Settings
from engine.types import LABELS, Span

NOTE = (
    "A 45-year-old man presented with fever and cough. Chest radiograph showed pneumonia in the right lower lobe. "
    "He was treated with amoxicillin and recovered."
)


@pytest.fixture(scope="module")
def stage() -> NerStage:
    return load(Settings(device="cpu"))


def _check_spans(text: str, spans: list) -> None:
    previous_end = -1
    for span in spans:
        assert 0 <= span.start < span.end <= len(text)
        assert span.start >= previous_end, "spans overlap or are unsorted"
        previous_end = span.end
        piece = text[span.start : span.end]
        assert piece == piece.strip() and piece
        assert span.label in LABELS
        assert 0.0 <= span.score <= 1.0


def test_finds_clinical_entities_with_exact_offsets(stage: NerStage) -> None:
    (spans,) = stage.predict([NOTE])
    _check_spans(NOTE, spans)
    found = {(NOTE[s.start : s.end].lower(), s.label) for s in spans}
    assert {("fever", "DIAG"), ("cough", "DIAG"), ("amoxicillin", "MED")} <= found
    assert stage.version == json.loads((DEFAULT_MODEL_DIR / "ner" / "config.json").read_text())["version"]


def test_unicode_prefix_shifts_offsets_only(stage: NerStage) -> None:
    prefix = "Ünïcödé 🙂 naïve café\u200b\u00a0\r\n"
    plain, shifted = stage.predict([NOTE, prefix + NOTE])
    moved = {(s.start - len(prefix), s.end - len(prefix), s.label) for s in shifted if s.start >= len(prefix)}
    assert {(s.start, s.end, s.label) for s in plain} == moved


def test_empty_and_blank_notes_have_no_entities(stage: NerStage) -> None:
    assert stage.predict([]) == []
    assert stage.predict(["", "   \n\t ", NOTE])[:2] == [[], []]


WORDS = st.sampled_from(
    ["fever", "chest pain", "Pneumonia", "aspirin 81 mg", "CT scan", "liver", "appendectomy", "denies",
     "Ménière's disease", "naïve", "ﬁbrosis", "e\u0301de\u0300me", "心脏", "🙂", "ß", "İstanbul", "x-ray", "(HbA1c)"]
)
SPACES = st.sampled_from([" ", "  ", "\n", "\r\n", "\t", "\u00a0", "\u2009", "\u200b", " . ", ", ", "\n\n"])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(WORDS, SPACES), min_size=0, max_size=25), st.text(max_size=12))
def test_offsets_hold_under_generated_whitespace_and_unicode(stage: NerStage, parts: list, noise: str) -> None:
    text = noise + "".join(w + s for w, s in parts)
    (spans,) = stage.predict([text])
    _check_spans(text, spans)


def test_windows_cover_every_token_once() -> None:
    for n in (0, 1, 509, 510, 511, 1500, 4000):
        windows = make_windows(0, n, 510, 128)
        owned = [t for w in windows for t in range(w.keep_start, w.keep_end)]
        assert owned == list(range(n))
        for w in windows:
            assert w.end - w.start <= 510 and w.start <= w.keep_start <= w.keep_end <= w.end
        for a, b in itertools.pairwise(windows):
            assert a.end - b.start == 128 or b.end == n


def test_long_note_is_read_in_merged_windows(stage: NerStage) -> None:
    paragraph = NOTE + " Abdominal CT revealed a mass in the liver; biopsy confirmed hepatocellular carcinoma.\n\n"
    copies = 40
    text = paragraph * copies
    assert len(stage.encode(text)) > 4 * 512
    alone, merged = stage.predict([paragraph, text])
    _check_spans(text, merged)
    reference = {(s.start, s.end, s.label) for s in alone}
    agreement = []
    for k in range(copies):
        lo = k * len(paragraph)
        inside = {(s.start - lo, s.end - lo, s.label) for s in merged if lo <= s.start < lo + len(paragraph)}
        agreement.append(len(inside & reference) / max(len(reference), 1))
    # every copy, also those cut by window edges and the last one, is annotated like the paragraph alone
    assert min(agreement) >= 0.75 and float(np.mean(agreement)) >= 0.9


def test_viterbi_repairs_an_inside_tag_without_begin() -> None:
    enc = Encoding(np.array([1, 2, 3]), np.array([[0, 5], [6, 10], [11, 15]]))
    probs = np.full((3, len(BIO_LABELS)), 0.01, dtype=np.float32)
    probs[0, BIO_LABELS.index("O")] = 0.9
    probs[1, BIO_LABELS.index("I-DIAG")] = 0.6
    probs[1, BIO_LABELS.index("B-DIAG")] = 0.3
    probs[2, BIO_LABELS.index("I-DIAG")] = 0.9
    (span,) = annotate(enc, probs)
    assert (span.start, span.end, span.label) == (6, 15, "DIAG")
    assert 0.0 < span.score <= 0.9


def test_hf_model_works_in_a_transformers_pipeline(stage: NerStage) -> None:
    from transformers import pipeline

    from engine.backbone import load_tokenizer
    from engine.encoder import to_transformers

    assert type(stage.hf_model).__name__.endswith("ForTokenClassification")
    # the stage runs a plain-PyTorch BERT (engine.encoder); its transformers twin has the same weights
    model = to_transformers(stage.hf_model)
    tokenizer = load_tokenizer(Path(stage.tokenizer.name_or_path), use_transformers=True)
    tagger = pipeline("token-classification", model=model, tokenizer=tokenizer,
                      aggregation_strategy="simple", device=-1)
    groups = {g["entity_group"] for g in tagger(NOTE)}
    assert groups and groups <= set(LABELS)


def test_missing_model_folder_is_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(EngineError) as info:
        load(Settings(model_dir=tmp_path, device="cpu"))
    assert info.value.code == ErrorCode.MODEL_NOT_FOUND


def test_committed_model_describes_itself_within_budget() -> None:
    folder = DEFAULT_MODEL_DIR / "ner"
    config = json.loads((folder / "config.json").read_text())
    assert config["backbone"] == "all-MiniLM-L6-v2"
    assert [config["id2label"][str(i)] for i in range(len(BIO_LABELS))] == list(BIO_LABELS)
    assert {"version", "training", "temperature"} <= set(config)
    assert (folder / "weights.safetensors").stat().st_size <= 22_000_000
    card = (folder / "MODEL_CARD.md").read_text()
    assert "MACCROBAT" in card and "CC BY 4.0" in card and config["version"] in card


@pytest.mark.slow
@pytest.mark.shared_data
def test_reproduces_recorded_dev_f1_on_cpu(stage: NerStage, shared_data: Path) -> None:
    from engine.corpora.brat import read_brat
    from engine.corpora.document import split_documents
    from engine.evaluation.ner import evaluate_model

    metrics = json.loads((DEFAULT_MODEL_DIR / "ner" / "metrics.json").read_text())
    _, dev = split_documents(read_brat(shared_data / "maccrobat"), dev_count=stage.config["training"]["n_dev_docs"])
    result = evaluate_model(stage, dev)
    assert result["overall"]["f1"] == pytest.approx(metrics["dev"]["overall"]["f1"], abs=0.003)
    assert result["overall"]["f1"] >= 0.65


def test_cpu_batches_hold_one_window_length_and_match_a_padded_batch(stage: NerStage) -> None:
    """On CPU no window is padded (a note's short last window runs alone), and the probabilities equal those of one
    padded batch of the same windows."""
    assert stage.device.type == "cpu"
    long_note = (NOTE + " ") * 40
    encodings = [stage.encode(NOTE), stage.encode(long_note)]
    assert len(encodings[1]) > 2 * (stage.window_tokens - 2)  # several full windows and a shorter last one
    widths: list[list[int]] = []
    forward = stage._forward

    def recording(batch: list[np.ndarray]) -> list[np.ndarray]:
        widths.append([len(ids) for ids in batch])
        return forward(batch)

    stage._forward = recording  # type: ignore[method-assign]
    try:
        pairs = list(stage.iter_window_probs(encodings))
    finally:
        del stage._forward
    assert all(len(set(w)) == 1 for w in widths), widths
    assert len(widths) < len(pairs)  # equal-length windows still share a batch
    padded = stage._forward([encodings[w.doc].ids[w.start : w.end] for w, _ in pairs])
    for (_, probs), reference in zip(pairs, padded, strict=True):
        np.testing.assert_allclose(probs.astype(np.float32), reference.astype(np.float32), atol=2e-3)


def _cut(text: str, piece: str, label: str = "DIAG", score: float = 0.9, after: int = 0) -> Span:
    start = text.index(piece, after)
    return Span(start=start, end=start + len(piece), label=label, score=score)


def test_spans_inside_words_widen_to_the_whole_word() -> None:
    text = "Pelvic adhesions and a cephalic arteriovenous fistula; RSV positive."
    spans = [_cut(text, "ad"), _cut(text, "arte", "ANAT"), _cut(text, "RS", "TEST")]
    got = [(text[s.start : s.end], s.label) for s in snap_to_words(text, spans)]
    assert got == [("adhesions", "DIAG"), ("arteriovenous", "ANAT"), ("RSV", "TEST")]
    whole = [_cut(text, "adhesions"), _cut(text, "fistula", "ANAT")]  # already whole words: unchanged
    assert snap_to_words(text, whole) == whole


def test_split_word_merges_and_case_changes_end_words() -> None:
    text = "Left inferior palpebral conjunctiva. 2-D ECHOCARDIOGRAMMultiple views; visitNote."
    spans = [
        _cut(text, "Left inferior palpe", "ANAT", 0.8),
        _cut(text, "bral conjunctiva", "ANAT", 0.6),
        _cut(text, "ECHOCARDIOGRAM", "TEST"),
        _cut(text, "visit", "PROC"),
    ]
    got = snap_to_words(text, spans)
    assert [(text[s.start : s.end], s.label) for s in got] == [
        ("Left inferior palpebral conjunctiva", "ANAT"),
        ("ECHOCARDIOGRAM", "TEST"),  # lost spaces: a capitalised word after an upper-case run starts a new word
        ("visit", "PROC"),  # camelCase
    ]
    assert got[0].score == 0.6  # the merged span keeps the lower score


def test_predicted_spans_never_cut_a_word(stage: NerStage) -> None:
    text = (
        "Complex right lower quadrant mass with possible ectopic pregnancy. Right ruptured tubal pregnancy and pelvic "
        "adhesions. Left brachiocephalic arteriovenous fistula. Abdominal abscess drained."
    )
    (spans,) = stage.predict([text])
    _check_spans(text, spans)
    for s in spans:
        assert not (s.start > 0 and text[s.start - 1].isalnum()), text[s.start - 5 : s.end]
        assert not (s.end < len(text) and text[s.end].isalnum()), text[s.start : s.end + 5]


def test_fast_viterbi_equals_the_full_matrix_decode() -> None:
    from engine.ner_decode import _viterbi_matrix, viterbi

    rng = np.random.default_rng(7)
    for case in range(40):
        n = int(rng.integers(1, 400))
        logits = rng.normal(size=(n, len(BIO_LABELS))) * rng.uniform(0.5, 4) + np.eye(len(BIO_LABELS))[0] * 2
        if case % 5 == 0:
            logits = np.round(logits)  # ties: both resolve to the lower label id
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        fast = viterbi(probs.astype(np.float16))
        # the fast decode adds in float64 (Python floats): the reference does too, so exact ties stay ties
        logp = np.log(np.clip(probs.astype(np.float16).astype(np.float32), 1e-9, 1.0)).astype(np.float64)
        reference = _viterbi_matrix(logp)
        assert fast.tolist() == reference.tolist(), case
        for prev, cur in itertools.pairwise(fast):  # the path is BIO-valid
            label = BIO_LABELS[cur]
            assert not label.startswith("I-") or BIO_LABELS[prev][2:] == label[2:], (case, prev, cur)
        assert not BIO_LABELS[fast[0]].startswith("I-")
