"""The plain-PyTorch encoder and tokenizer (engine.encoder) against transformers, on the real packaged MiniLM and the
real committed NER and summariser models: same tokens, same logits, same entities, same scores, no transformers
import at inference."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine import backbone as bb
from engine import encoder as enc
from engine.ner import NerStage, build_model, load_delta, load_folder, read_config
from engine.sentences import split_sentences
from engine.settings import DEFAULT_MODEL_DIR, Settings
from engine.summarizer import default_k, select

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
SHARED_DATA = Path(os.environ.get("CLINICAL_DATA_DIR", REPO.parent / "shared" / "data"))
TRICKY = [
    "",
    "Ünïcödé 🙂 naïve café\u200b\u00a0\r\n Ménière's disease, ﬁbrosis, e\u0301de\u0300me, 心脏, İstanbul, ß.",
    "Literal [CLS] and [SEP] and [MASK] in a note; x-ray (HbA1c) 7.2%, BP 150/92, aspirin 81mg.",
    "supercalifragilisticexpialidocious" * 5 + " antidisestablishmentarianism",
]
TOL = 1e-4


@pytest.fixture(scope="module")
def minilm() -> Path:
    return bb.resolve_backbone(None)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Real notes (two MACCROBAT case reports and an MTSamples report, when the shared data is here) first, then
    the repository's own fixture notes."""
    paths = [FIXTURES / "assertion" / "note.txt", *sorted((FIXTURES / "ner_tiny").glob("*.txt"))[:2]]
    if SHARED_DATA.is_dir():
        real = (
            sorted((SHARED_DATA / "maccrobat").glob("*.txt"))[:2]
            + sorted((SHARED_DATA / "mtsamples").glob("*.txt"))[:1]
        )
        paths = real + paths
    return [p.read_text(encoding="utf-8") for p in paths]


@pytest.fixture(scope="module")
def tokenizers(minilm: Path):
    plain = bb.load_tokenizer(minilm)
    assert isinstance(plain, enc.FastTokenizer)
    return plain, bb.load_tokenizer(minilm, use_transformers=True)


def test_tokenizer_matches_transformers(tokenizers, texts: list[str]) -> None:
    plain, hf = tokenizers
    for name in ("cls_token_id", "sep_token_id", "pad_token_id", "mask_token_id", "unk_token_id"):
        assert getattr(plain, name) == getattr(hf, name), name
    assert len(plain) == len(hf)
    for text in [*texts, *TRICKY]:
        a = plain(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        b = hf(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        assert a["input_ids"] == b["input_ids"]
        assert [tuple(o) for o in a["offset_mapping"]] == [tuple(o) for o in b["offset_mapping"]]
    batch = [*TRICKY, texts[0][:300], "short"]
    a = plain(batch, padding=True, truncation=True, max_length=48, return_tensors="pt")
    b = hf(batch, padding=True, truncation=True, max_length=48, return_tensors="pt")
    assert set(a) == set(b)
    for key in b:
        assert torch.equal(a[key], b[key]), key
    a = plain(batch, add_special_tokens=False, truncation=False)["input_ids"]
    assert a == hf(batch, add_special_tokens=False, truncation=False)["input_ids"]
    # all-MiniLM-L6-v2's tokenizer.json pads and cuts to 128: a long note must come back whole
    longest = max(texts, key=len)
    assert (
        len(plain(longest, add_special_tokens=False)["input_ids"])
        == len(hf(longest, add_special_tokens=False)["input_ids"])
        > 128
    )


def test_vocab_txt_folder_without_tokenizer_json(tmp_path: Path, minilm: Path, tokenizers, texts: list[str]) -> None:
    for name in ("config.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(minilm / name, tmp_path / name)
    plain = enc.load_tokenizer(tmp_path)
    assert plain is not None
    _, hf = tokenizers
    for text in [texts[1], *TRICKY]:
        a = plain(text, add_special_tokens=False, return_offsets_mapping=True)
        b = hf(text, add_special_tokens=False, return_offsets_mapping=True)
        assert a["input_ids"] == b["input_ids"]
        assert [tuple(o) for o in a["offset_mapping"]] == [tuple(o) for o in b["offset_mapping"]]
    assert plain([TRICKY[2]])["input_ids"] == hf([TRICKY[2]])["input_ids"]


def _padded(tokenizer, texts: list[str], lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """A right-padded batch of ``[CLS] first-n-pieces [SEP]`` windows of different lengths."""
    rows = []
    for text, n in zip(texts, lengths, strict=True):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][:n]
        rows.append([tokenizer.cls_token_id, *ids, tokenizer.sep_token_id])
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return input_ids, mask


def _max_diff(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    keep = mask.bool()
    return float((a[keep] - b[keep]).abs().max())


def test_bare_encoder_matches_transformers_on_padded_batches(minilm: Path, tokenizers, texts: list[str]) -> None:
    plain = bb.load_encoder(minilm)
    hf = bb.load_encoder(minilm, use_transformers=True).float().eval()
    assert isinstance(plain, enc.BertModel) and type(hf).__module__.startswith("transformers")
    assert [n for n, _ in plain.named_parameters()] == [n for n, _ in hf.named_parameters()]
    input_ids, mask = _padded(tokenizers[0], texts[:4], [400, 120, 37, 5])
    with torch.inference_mode():
        a = plain(input_ids=input_ids, attention_mask=mask).last_hidden_state
        b = hf(input_ids=input_ids, attention_mask=mask).last_hidden_state
        assert _max_diff(a, b, mask) < TOL
        # the ICD re-ranker's call: tokenizer output unpacked into the model
        batch = tokenizers[0](TRICKY, padding=True, truncation=True, max_length=48, return_tensors="pt")
        assert _max_diff(plain(**batch).last_hidden_state, hf(**batch).last_hidden_state, batch["attention_mask"]) < TOL


@pytest.fixture(scope="module")
def ner_pair(minilm: Path):
    """The committed NER model loaded plainly (as the engine does) and, independently, through transformers."""
    folder = DEFAULT_MODEL_DIR / "ner"
    plain = load_folder(folder, Settings(device="cpu"))
    config = read_config(folder)
    id2label = [str(config["id2label"][str(i)]) for i in range(len(config["id2label"]))]
    backbone = bb.resolve_backbone(config.get("backbone"))
    hf_model = build_model(backbone, id2label, use_transformers=True)
    load_delta(hf_model, folder / config.get("weights", "weights.safetensors"))
    hf = NerStage(hf_model, bb.load_tokenizer(backbone, use_transformers=True), config, torch.device("cpu"))
    return plain, hf


def test_ner_logits_match_transformers_on_padded_batches(ner_pair, texts: list[str]) -> None:
    plain, hf = ner_pair
    assert isinstance(plain.hf_model, enc.BertForTokenClassification)
    assert type(hf.hf_model).__module__.startswith("transformers")
    input_ids, mask = _padded(plain.tokenizer, texts[:4], [400, 150, 64, 9])
    with torch.inference_mode():
        a = plain.hf_model(input_ids=input_ids, attention_mask=mask).logits
        b = hf.hf_model(input_ids=input_ids, attention_mask=mask).logits
    assert a.shape == b.shape == (4, input_ids.shape[1], len(plain.id2label))
    assert _max_diff(a, b, mask) < TOL


def test_ner_entities_identical_both_ways(ner_pair, texts: list[str]) -> None:
    plain, hf = ner_pair
    long_note = "\n\n".join(texts[:2])  # two windows, batched together with the short notes
    notes = [*texts[2:], long_note, TRICKY[1], TRICKY[2]]
    ours, theirs = plain.predict(notes), hf.predict(notes)
    assert sum(len(s) for s in ours) > 30
    for a, b in zip(ours, theirs, strict=True):
        assert [(s.start, s.end, s.label) for s in a] == [(s.start, s.end, s.label) for s in b]
        assert max((abs(x.score - y.score) for x, y in zip(a, b, strict=True)), default=0.0) < 2e-3


def test_summarizer_scores_match_transformers(pipeline, minilm: Path, texts: list[str]) -> None:
    summarizer = pipeline.stage("summarizer")
    assert isinstance(summarizer.model.encoder, enc.BertModel)
    twin = copy.copy(summarizer)
    twin.model = copy.deepcopy(summarizer.model)
    twin.model.encoder = enc.to_transformers(summarizer.model.encoder).eval()
    twin.tokenizer = bb.load_tokenizer(minilm, use_transformers=True)
    assert type(twin.model.encoder).__module__.startswith("transformers")
    note = "\n\n".join(texts[:3])  # long enough for two windows
    sentences = [note[s:e] for s, e in split_sentences(note)]
    a = torch.tensor(summarizer.score_sentences(sentences))
    b = torch.tensor(twin.score_sentences(sentences))
    assert len(a) == len(sentences) > 20
    assert float((a - b).abs().max()) < TOL
    k = default_k(len(sentences))
    assert select(a.tolist(), sentences, k) == select(b.tolist(), sentences, k)


def test_training_state_moves_between_plain_and_transformers(ner_pair) -> None:
    plain, _ = ner_pair
    model = copy.deepcopy(plain.hf_model)
    twin = enc.to_transformers(model)
    assert type(twin).__name__ == "BertForTokenClassification"
    # engine.training.ner.continue_pretraining copies a transformers encoder into the model this way
    result = model.base_model.load_state_dict(twin.base_model.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    ids = torch.tensor([[plain.cls_id, 2000, 2001, 2002, plain.sep_id]])
    model.train()
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    logits.sum().backward()
    trained = [n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    assert "classifier.weight" in trained and "bert.encoder.layer.0.attention.self.query.weight" in trained


def test_other_folders_fall_back_to_transformers(tmp_path: Path, minilm: Path) -> None:
    config = json.loads((minilm / "config.json").read_text())
    config["position_embedding_type"] = "relative_key"
    (tmp_path / "config.json").write_text(json.dumps(config))
    for name in (
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
    ):
        (tmp_path / name).symlink_to(minilm / name)
    assert not enc.supports(tmp_path) and enc.load_bert(tmp_path) is None
    assert type(bb.load_encoder(tmp_path)).__module__.startswith("transformers")
    config["model_type"] = "distilbert"
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert enc.load_tokenizer(tmp_path) is None and enc.load_token_classifier(tmp_path, ["O"]) is None


def test_inference_process_does_not_import_transformers() -> None:
    code = (
        "import sys, json\n"
        "from engine.pipeline import load_pipeline\n"
        "p = load_pipeline(device='cpu')\n"
        "r = p.analyze('Patient denies chest pain. History of hypertension on metformin.')\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'transformers', 'huggingface_hub'})\n"
        "print(json.dumps({'entities': len(r.entities), 'heavy': heavy}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["entities"] > 0
    assert out["heavy"] == []
