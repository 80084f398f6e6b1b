"""The student folder's scores and ``MODEL_CARD.md`` (see :mod:`engine.training.distill`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.corpora.document import Document
from engine.settings import Settings
from engine.training.ner_card import MACCROBAT_MAPPING, close_card

CREDITS: tuple[str, ...] = (
    "MACCROBAT2020 clinical case reports, CC BY 4.0 (Caufield 2019/2020, figshare doi:10.6084/m9.figshare.9764942): "
    "gold labels (training reports) and soft-target text",
    "MTSamples transcribed sample reports (mtsamples.com; licence unknown, local use): unlabelled soft-target text "
    "only, never shipped",
    "PubMed articles of the arXiv/PubMed summarisation dataset (Cohan et al. 2018), research use: unlabelled "
    "soft-target text only",
    "The teacher's own training data (its MODEL_CARD.md): MACCROBAT, and masked-LM text from BC5CDR, NCBI-disease, "
    "AnatEM (via cambridgeltl/MTL-Bioinformatics-2016, redistributable for research) and the PubMed articles",
)


def finish_folder(folder: Path, config: dict[str, Any], metrics: dict[str, Any], train_docs: Sequence[Document],
                  dev_docs: Sequence[Document], settings: Settings) -> None:
    """Fit the confidence temperature, score the folder as it will run (and in fp32, and the teacher), write
    ``config.json``, ``metrics.json`` and ``MODEL_CARD.md``."""
    from engine.evaluation.ner import Gazetteer, evaluate_model, fit_temperature
    from engine.ner import load_folder

    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if dev_docs:
        fp32 = load_folder(folder, settings, device="cpu", quantize=False)
        metrics["calibration"] = fit_temperature(load_folder(folder, settings, device="cpu"), dev_docs)
        config["temperature"] = fp32.temperature = metrics["calibration"]["temperature"]
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        metrics["dev"] = evaluate_model(load_folder(folder, settings, device="cpu"), dev_docs)
        metrics["dev_fp32"] = evaluate_model(fp32, dev_docs)
        teacher = load_folder(Path(config["training"]["teacher"]), settings, device="cpu")
        metrics["teacher_dev"] = evaluate_model(teacher, dev_docs)
        metrics["dev_baseline_dictionary"] = evaluate_model(Gazetteer(train_docs), dev_docs)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (folder / "MODEL_CARD.md").write_text(model_card(config, metrics), encoding="utf-8")


def _score_rows(metrics: dict[str, Any]) -> list[str]:
    columns = [("dev", "student (as shipped)"), ("dev_fp32", "student fp32"), ("teacher_dev", "teacher"),
               ("dev_baseline_dictionary", "dictionary")]
    present = [(key, name) for key, name in columns if key in metrics]
    rows = ["| | " + " | ".join(f"{name} F1" for _, name in present) + " |",
            "|---|" + "---|" * len(present)]
    rows.append("| overall | " + " | ".join(f"{metrics[k]['overall']['f1']}" for k, _ in present) + " |")
    for label in metrics["dev"]["per_type"]:
        rows.append(f"| {label} | " + " | ".join(f"{metrics[k]['per_type'][label]['f1']}" for k, _ in present) + " |")
    return rows


def model_card(config: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The student's ``MODEL_CARD.md``: what it is, its teacher, data and licences, training and dev scores."""
    training = config["training"]
    quant = config.get("cpu_quantization")
    lines = [
        f"# NER model {config['version']} (distilled student)",
        "",
        f"Token classifier (BIO over DIAG, PROC, MED, TEST, ANAT): {config['num_hidden_layers']} transformer layers "
        f"initialised from layers {config['teacher']['layers']} of the teacher `{config['teacher']['version']}` "
        f"(6-layer MiniLM on `{config['backbone']}`), then distilled. This folder holds only the trained parameters "
        "(fp16); the backbone's word embeddings stay frozen. Inference: windows of "
        f"{config['window_tokens']} tokens with {config['window_overlap']} overlap, "
        f"{'linear layers in dynamic int8 on CPU (' + quant + ')' if quant else 'fp32 on CPU'}, bf16 on CUDA; "
        f"BIO-constrained {config.get('decoder', 'viterbi')} decode; entity score = "
        f"{config.get('score_aggregate', 'min')} token probability at temperature {config.get('temperature')}.",
        "",
        "## Data and licences",
        "",
        *(f"- {c}" for c in CREDITS),
        "",
        f"{MACCROBAT_MAPPING}. The dev split (the last 20 reports by id, the teacher's) was never trained on, nor "
        "given to the teacher for soft targets.",
        "",
        "## Training",
        "",
        f"- soft targets: {', '.join(Path(t).name for t in training['targets'])} (the teacher's token "
        "probabilities, averaged over windows of 512/128 and 256/64)",
        f"- distillation: {training['epochs']} epochs, lr {training['lr']} (head {training['head_lr']}), KL at "
        f"temperature {training['kd_temperature']} + {training['gold_weight']} x gold cross-entropy, "
        f"{training['n_examples']} windows of {training['train_window']} tokens",
        f"- fine-tuning on gold: up to {training['finetune_epochs']} epochs, lr {training['finetune_lr']}, "
        f"{training['finetune_kd_weight']} x KL kept; best checkpoint by dev strict F1 over both phases "
        f"(patience {training['patience']})",
        f"- seed {training['seed']}, device {metrics.get('device')}, {metrics.get('train_minutes')} min; "
        f"train documents {training['n_train_docs']}, dev documents {training['n_dev_docs']}",
        "",
    ]
    if "dev" in metrics:
        cal = metrics.get("calibration", {})
        lines += [
            "## Dev scores (strict character-span match, MACCROBAT dev split)",
            "",
            *_score_rows(metrics),
            "",
            f"Student (as shipped) P {metrics['dev']['overall']['precision']}, R {metrics['dev']['overall']['recall']};"
            f" ECE {metrics['dev']['ece']} at the fitted temperature (before: {cal.get('ece_before')}; two-fold "
            f"{cal.get('ece_two_fold')}). Command: `.venv/bin/python -m engine evaluate ner --device cpu`.",
            "",
        ]
    return close_card(lines, metrics)
