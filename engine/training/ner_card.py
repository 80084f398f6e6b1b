"""The NER model card: ``MODEL_CARD.md`` of a trained model folder, its corpus credits and closing limits.

:func:`close_card` (notes, then :data:`CARD_LIMITS`) closes the distilled student's card too
(:mod:`engine.training.distill_card`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.corpora.specs import parse_data_spec

SOURCES: dict[str, str] = {
    "maccrobat": "MACCROBAT2020 clinical case reports, CC BY 4.0 (Caufield 2019/2020, "
    "figshare doi:10.6084/m9.figshare.9764942)",
    "chia": "Chia clinical-trial eligibility criteria, CC BY 4.0 (Kury et al. 2020, "
    "figshare doi:10.6084/m9.figshare.11855817)",
    "bc5cdr": "BioCreative V CDR (via cambridgeltl/MTL-Bioinformatics-2016), redistributable for research",
    "ncbi-disease": "NCBI disease corpus (via cambridgeltl/MTL-Bioinformatics-2016), redistributable for research",
    "anatem": "AnatEM anatomy corpus (via cambridgeltl/MTL-Bioinformatics-2016), redistributable for research",
    "pubmed-summarization": "PubMed articles of the arXiv/PubMed summarisation dataset (Cohan et al. 2018), "
    "research use; unlabelled text for masked-LM adaptation only",
}


MACCROBAT_MAPPING = (
    "MACCROBAT types map to product labels as in the data README (Disease_disorder and Sign_symptom -> DIAG, "
    "Therapeutic_procedure -> PROC, Medication -> MED, Diagnostic_procedure -> TEST, Biological_structure -> ANAT)"
)
"""How the base corpus's types become product labels, as both NER model cards state it."""

CARD_LIMITS = [
    "## Limits",
    "",
    "Trained on published case reports, not real EHR notes; expect lower accuracy on terse, abbreviated notes. "
    "Not a medical device.",
    "",
]
"""The closing section of every NER model card (teacher and distilled student)."""


def corpus_names(specs: Sequence[str], plain_paths: Sequence[str] = ()) -> list[str]:
    """Known corpora (keys of :data:`SOURCES`) named by data specs or plain paths, sorted."""
    names = []
    parsed = [parse_data_spec(spec)[1:] for spec in specs] + [(Path(p), None) for p in plain_paths]
    for path, label_map in parsed:
        for name in SOURCES:
            if name in {label_map, path.name, path.parent.name}:
                names.append(name)
                break
    return sorted(set(names))


def model_card(config: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The model folder's ``MODEL_CARD.md``: what it is, data and licences, configuration and dev scores."""
    training = config["training"]
    corpora = corpus_names([*training.get("data", []), *training.get("pretrain_data", [])],
                            training.get("mlm_text", []))
    lines = [
        f"# NER model {config['version']}",
        "",
        "Token classifier (BIO over DIAG, PROC, MED, TEST, ANAT) on the backbone "
        f"`{config['backbone']}`; this folder holds only the trained parameters (fp16), the backbone's word "
        "embeddings stay frozen. Decoding: BIO-constrained "
        f"{config.get('decoder', 'viterbi')} over merged overlapping windows; the entity score is the "
        f"{config.get('score_aggregate', 'min')} probability of its decoded token labels at softmax temperature "
        f"{config.get('temperature', 1.0)} (fitted on the dev notes to minimise calibration error).",
        "",
        "## Data and licences",
        "",
        *(f"- {SOURCES[c]}" for c in corpora),
        *(["- (unrecognised corpora: " + ", ".join(training.get("data", [])) + ")"] if not corpora else []),
        "",
        f"{MACCROBAT_MAPPING}; discontinuous spans are skipped; overlapping spans keep the longer.",
        "",
        "## Training",
        "",
        f"- train documents: {training['n_train_docs']}, dev documents (held out, early stopping and scores): "
        f"{training['n_dev_docs']}, warm-up documents: {training['n_pretrain_docs']}",
        f"- epochs (max) {training['epochs']}, lr {training['lr']}, batch {training['batch_size']}, "
        f"train window {training['train_window']} tokens, label smoothing {training['label_smoothing']}, "
        f"seed {training['seed']}, device {metrics.get('device')}, {metrics.get('train_minutes')} min",
        f"- continued masked-LM pre-training: {training.get('mlm_steps', 0)} steps (lr {training.get('mlm_lr')}) on "
        f"{', '.join(training.get('mlm_text', [])) or 'nothing'} plus the training texts",
        f"- multi-corpus warm-up: {training.get('pretrain_epochs', 0)} epochs on "
        f"{', '.join(training.get('pretrain_data', [])) or 'nothing'}",
        "",
    ]
    experiments = metrics.get("experiments") or []
    if experiments:
        lines += [
            "## What was tried (dev strict F1, same dev split; the chosen run is this model)",
            "",
            "| run | what | dev F1 |",
            "|---|---|---|",
            *(f"| {e.get('name')} | {e.get('what', '')} | {e.get('dev_f1')} |" for e in experiments),
            "",
        ]
    if "dev" in metrics:
        dev, base = metrics["dev"], metrics["dev_baseline_dictionary"]
        lines += [
            "## Dev scores (strict character-span match)",
            "",
            "| | model P | model R | model F1 | dictionary F1 |",
            "|---|---|---|---|---|",
            f"| overall | {dev['overall']['precision']} | {dev['overall']['recall']} | {dev['overall']['f1']} | "
            f"{base['overall']['f1']} |",
            *(
                f"| {lab} | {dev['per_type'][lab]['precision']} | {dev['per_type'][lab]['recall']} | "
                f"{dev['per_type'][lab]['f1']} | {base['per_type'][lab]['f1']} |"
                for lab in dev["per_type"]
            ),
            "",
            f"Expected calibration error (ECE) of entity scores: {dev['ece']} at the fitted temperature "
            f"{config.get('temperature', 1.0)} (before fitting: {metrics.get('calibration', {}).get('ece_before')}; "
            f"two-fold estimate on unseen dev notes: {metrics.get('calibration', {}).get('ece_two_fold')}). "
            f"Errors: {dev['errors']}.",
            "",
        ]
    return close_card(lines, metrics)


def close_card(lines: list[str], metrics: dict[str, Any]) -> str:
    """A NER model card from its sections: ``lines``, then the free-text ``notes`` of ``metrics`` (when any) and
    :data:`CARD_LIMITS`."""
    notes = [*(str(note) for note in metrics.get("notes", [])), ""] if metrics.get("notes") else []
    return "\n".join([*lines, *notes, *CARD_LIMITS])
