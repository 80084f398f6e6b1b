"""Extractive summariser: contract shape, verbatim offsets, order and rank, K handling, long notes, CLI, training."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.corpora.pubmed import read_pubmed
from engine.sentences import split_sentences
from engine.summarizer import default_k, encode_sentences, score_encoding, select, sentence_features, textrank_scores
from engine.training.summarizer import greedy_oracle, labelled_example, oracle_example, rouge_tokens, train

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "summarizer"

NOTE = (
    "CHIEF COMPLAINT:\nChest pain.\n\n"
    "HISTORY OF PRESENT ILLNESS:\nThe patient is a 67-year-old man with hypertension and diabetes who presents with "
    "two days of substernal chest pressure radiating to the left arm. He was seen by Dr. Lee in the E.R. and given "
    "aspirin 325 mg p.o. once. Troponin was elevated at 0.8 ng/mL.\n\n"
    "VITALS: T 98.6. P 88. BP 150/92. RR 18.\n\n"
    "ASSESSMENT AND PLAN:\n1. Non-ST elevation myocardial infarction. Start heparin drip and metoprolol 25 mg b.i.d.\n"
    "2. Diabetes mellitus type 2. Hold metformin, sliding scale insulin.\n"
    "3. Cardiology consult for catheterization tomorrow."
)


@pytest.fixture(scope="module")
def summarizer(pipeline):
    return pipeline.stage("summarizer")


def test_contract_shape_verbatim_order_and_rank(pipeline) -> None:
    result = pipeline.summarize(NOTE, k=3, note_id="note-1").to_dict()
    assert set(result) == {"id", "sentences"} and result["id"] == "note-1"
    sentences = result["sentences"]
    assert len(sentences) == 3
    assert [s["start"] for s in sentences] == sorted(s["start"] for s in sentences)
    assert sorted(s["rank"] for s in sentences) == [1, 2, 3]
    spans = set(split_sentences(NOTE))
    for s in sentences:
        assert set(s) == {"start", "end", "text", "score", "rank"}
        assert NOTE[s["start"] : s["end"]] == s["text"]
        assert (s["start"], s["end"]) in spans
        assert 0.0 <= s["score"] <= 1.0
    # Rank 1 carries the highest score among those chosen (trigram blocking only reorders ties of redundancy).
    by_rank = sorted(sentences, key=lambda s: s["rank"])
    assert by_rank[0]["score"] == max(s["score"] for s in sentences)


def test_default_k_is_proportional_to_length(summarizer) -> None:
    n = len(split_sentences(NOTE))
    out = summarizer.summarize(NOTE, None)
    assert len(out) == default_k(n)
    long_note = " ".join(f"Finding number {i} was reviewed with the family today." for i in range(80))
    assert len(summarizer.summarize(long_note, None)) > len(out)


def test_k_larger_than_note_returns_all(summarizer) -> None:
    spans = split_sentences(NOTE)
    # A sentence that is only a header ("CHIEF COMPLAINT:") is never chosen (engine/summarizer_sections.py).
    content = [NOTE[a:b] for a, b in spans if not re.fullmatch(r"[A-Z][A-Z /&]+:", NOTE[a:b])]
    assert len(content) == len(spans) - 3
    out = summarizer.summarize(NOTE, len(spans) + 10)
    assert [s.text for s in out] == content
    assert sorted(s.rank for s in out) == list(range(1, len(content) + 1))


def test_empty_and_one_sentence_notes(summarizer) -> None:
    assert summarizer.summarize("", 3) == []
    assert summarizer.summarize("   \n ", None) == []
    one = "  Patient denies chest pain.  "
    out = summarizer.summarize(one, 5)
    assert len(out) == 1
    assert out[0].text == "Patient denies chest pain." == one[out[0].start : out[0].end]
    assert out[0].rank == 1
    assert summarizer.summarize(one, 0) == []


def test_long_note_is_encoded_in_windows_and_late_sentences_can_be_chosen(summarizer) -> None:
    filler = "The patient was resting comfortably in bed with no new complaints overnight. "
    late = [
        "Echocardiogram showed a new severe mitral regurgitation with a flail posterior leaflet.",
        "Cardiothoracic surgery was consulted for urgent mitral valve repair.",
    ]
    note = filler * 200 + " ".join(late)
    sentences = [note[s:e] for s, e in split_sentences(note)]
    enc = encode_sentences(summarizer.tokenizer, sentences, summarizer.max_length, 80)
    assert len(enc.windows) >= 5  # far beyond one 512-token window
    assert sorted(i for w in enc.windows for i in w[3]) == list(range(len(sentences)))
    logits = summarizer.score_sentences(sentences)
    assert len(logits) == len(sentences) and all(math.isfinite(x) for x in logits)
    # The filler repeats itself, so trigram blocking leaves room for the late sentences, which only get there
    # because the windows after the first 512 tokens were scored.
    chosen = summarizer.summarize(note, 3)
    texts = {s.text for s in chosen}
    assert set(late) <= texts
    assert max(s.start for s in chosen) > len(filler) * 190


def test_cpu_scores_windows_unpadded_with_the_same_result(summarizer) -> None:
    filler = "The patient was resting comfortably in bed with no new complaints overnight. "
    note = filler * 40 + "Discharged home on aspirin."
    sentences = [note[s:e] for s, e in split_sentences(note)]
    enc = encode_sentences(summarizer.tokenizer, sentences, summarizer.max_length, 80)
    assert len(enc.windows) >= 2 and len({len(w[0]) for w in enc.windows}) > 1  # the last window is shorter
    assert summarizer.batch_size == 1  # on CPU each window runs alone, at its own length
    pad = summarizer.tokenizer.pad_token_id
    padded = score_encoding(summarizer.model, enc, pad, summarizer.device, batch_size=16)
    alone = score_encoding(summarizer.model, enc, pad, summarizer.device, batch_size=1)
    assert alone.shape == padded.shape == (len(sentences),)
    assert float((alone - padded).abs().max()) < 1e-4


def test_textrank_features() -> None:
    from engine.errors import EngineError

    texts = [
        "Heparin was started for the pulmonary embolism.",
        "The pulmonary embolism was confirmed on CT angiography.",
        "Heparin for pulmonary embolism was continued.",
        "The cafeteria menu changed.",
    ]
    rank = textrank_scores(texts)
    assert abs(float(rank.sum()) - 1.0) < 1e-6
    assert int(rank.argmin()) == 3  # shares no word with the others
    assert float(rank[2]) > float(rank[3]) and float(rank[0]) > float(rank[3])
    assert torch.allclose(textrank_scores(["the of and", "is was"]), torch.full((2,), 0.5))  # stop words only
    feats = sentence_features([7, 8, 6, 4], torch.randn(4, 16), texts, ["position", "textrank", "textrank_rank"])
    assert feats.shape == (4, 3)
    assert float(feats[3, 2]) == 1.0 and float(feats[:, 1].argmin()) == 3  # lowest TextRank: last rank
    # The original eight features need no texts, so models trained before TextRank load and score unchanged.
    assert sentence_features([7, 8, 6, 4], torch.randn(4, 16)).shape == (4, 8)
    with pytest.raises(EngineError):
        sentence_features([7], torch.randn(1, 16), ["x"], ["no_such_feature"])


def test_trigram_blocking_skips_redundant_sentences() -> None:
    texts = ["aspirin was started for chest pain", "aspirin was started for chest pain today", "plan home tomorrow"]
    assert select([3.0, 2.0, 1.0], texts, 2, trigram_blocking=True) == [0, 2]
    assert select([3.0, 2.0, 1.0], texts, 2, trigram_blocking=False) == [0, 1]
    assert select([3.0, 2.0, 1.0], texts, 3, trigram_blocking=True) == [0, 2, 1]
    # A tolerance lets a sentence through when only a small share of its trigrams repeats.
    texts = ["we studied the effect of drug a", "the effect of drug b on blood pressure in older adults", "x y z"]
    assert select([3.0, 2.0, 1.0], texts, 2, max_overlap=0.0) == [0, 2]
    assert select([3.0, 2.0, 1.0], texts, 2, max_overlap=0.3) == [0, 1]


def test_cli_summarize_sentences_2() -> None:
    lines = json.dumps({"id": "a", "text": NOTE}) + "\n" + '{"id": "b"}\n' + json.dumps({"id": "c", "text": ""}) + "\n"
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "summarize", "--sentences", "2", "--device", "cpu", "--jsonl", "-"],
        input=lines,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr  # the line without text is reported, the others still processed
    assert "missing field 'text'" in proc.stderr
    out = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", "c"]
    assert len(out[0]["sentences"]) == 2 and out[1]["sentences"] == []
    for s in out[0]["sentences"]:
        assert NOTE[s["start"] : s["end"]] == s["text"]


def test_greedy_oracle_picks_the_overlapping_sentences() -> None:
    sents = ["the cat sat on the mat", "stocks fell sharply today", "a dog barked at the cat on the mat"]
    ref = "the cat sat on the mat and a dog barked"
    chosen = greedy_oracle([rouge_tokens(s) for s in sents], rouge_tokens(ref))
    assert chosen[0] == 0 and 1 not in chosen


def test_labelled_example_checks_alignment() -> None:
    from engine.errors import EngineError

    text = "Chest pain resolved. Discharged home. Follow up with cardiology."
    ex = labelled_example(text, [1, 0, 1])
    assert ex.labels == [1.0, 0.0, 1.0]
    spans = split_sentences(text)
    ex2 = labelled_example(text, [(spans[2][0], spans[2][1], 1)])
    assert ex2.labels == [0.0, 0.0, 1.0]
    with pytest.raises(EngineError):
        labelled_example(text, [1, 0])


@pytest.mark.slow
def test_tiny_training_run_learns_the_oracle(tmp_path: Path) -> None:
    from engine.backbone import resolve_device
    from engine.summarizer import Summarizer

    articles = list(read_pubmed(FIXTURES / "tiny_pubmed.jsonl"))
    examples = [oracle_example(a) for a in articles]
    assert all(sum(e.labels) >= 2 for e in examples)
    note = "Patient admitted with pneumonia. Cafeteria was closed. Started ceftriaxone. Hallway was painted."
    metrics = train(
        examples,
        tmp_path / "summarizer",
        extra_examples=[(note, [1, 0, 1, 0])],
        trainable_layers=1,
        freeze_top_kv=True,
        epochs=20,
        lr=5e-4,
        head_lr=5e-2,
        max_length=128,
        max_trigram_overlap=0.2,
        seed=3,
        version="tiny-test",
    )
    losses = [h["loss"] for h in metrics["history"]]
    assert sum(losses[-3:]) / 3 < 0.8 * losses[0], losses
    folder = tmp_path / "summarizer"
    config = json.loads((folder / "config.json").read_text())
    assert config["version"] == "tiny-test" and config["trainable_layers"] == 1
    model = Summarizer(folder, resolve_device("cpu"))
    agree = 0
    total = 0
    for ex in examples:
        k = int(sum(ex.labels))
        chosen = {(s.start, s.end) for s in model.summarize(ex.text, k)}
        gold = {sp for sp, lab in zip(ex.spans, ex.labels, strict=True) if lab}
        agree += len(chosen & gold)
        total += k
    # Chance is about 1/3 (3-4 of 9-10 sentences); the trained scorer recovers most of the oracle.
    assert agree / total >= 0.55, agree / total
    assert config["features"][-2:] == ["textrank", "textrank_rank"] and config["max_trigram_overlap"] == 0.2

    # Continuing from a folder (as retraining does) keeps its features and selection settings.
    train(examples[:2], tmp_path / "again", init_dir=folder, epochs=1, version="tiny-again")
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    assert again["features"] == config["features"] and again["max_trigram_overlap"] == 0.2
    assert len(Summarizer(tmp_path / "again", resolve_device("cpu")).summarize(NOTE, 2)) == 2


@pytest.mark.shared_data
@pytest.mark.slow
def test_beats_lead7_on_pubmed_validation(shared_data: Path, summarizer) -> None:
    from engine.corpora.pubmed import split_path
    from engine.evaluation.summarizer import evaluate, lead

    articles = list(read_pubmed(split_path(shared_data, "validation")))
    assert len(articles) == 10
    table = evaluate(articles, summarizer, k=7, baselines=False)
    model_r1 = next(iter(table.values()))["rouge1"]

    class Lead7:
        def summarize(self, text: str, k: int):
            from engine.types import SummarySentence

            spans = split_sentences(text)
            return [SummarySentence(s, e, text[s:e], 1.0, r + 1) for r, (s, e) in enumerate(spans[:k])]

    lead_r1 = next(iter(evaluate(articles, Lead7(), k=7, baselines=False).values()))["rouge1"]
    assert lead(["a", "b"], 7) == [0, 1]
    assert model_r1 > lead_r1 + 0.02, (model_r1, lead_r1)
