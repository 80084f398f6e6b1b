"""Evaluate the summariser against baselines: ``python -m engine evaluate summarizer``.

One run scores, on the same notes and the same sentence segmentation (:mod:`engine.sentences`), with
``rouge-score`` (ROUGE-1, ROUGE-2, ROUGE-Lsum F1, Porter stemming on):

- the trained model through the public path (``Summarizer.summarize(text, k)``, as ``summarize --sentences k``);
- Lead-3 and Lead-K (the first sentences of the note), plus Lead-K over the dataset's own sentence list;
- K-Means over MiniLM sentence embeddings (mean-pooled, one sentence nearest each of K centroids);
- TextRank (PageRank over the TF-IDF cosine similarity graph of the sentences);
- the greedy ROUGE oracle (an upper bound for extraction with our segments).

Each article is handed over as one text, its sentences joined by a newline (``--joiner space`` for spaces).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from engine import backbone as bb
from engine.corpora.pubmed import PubMedArticle, read_pubmed, split_path
from engine.errors import EngineError, ErrorCode
from engine.sentences import split_sentences
from engine.settings import PACKAGED_BACKBONE, Settings
from engine.summarizer_sections import only_header

METRICS = ("rouge1", "rouge2", "rougeLsum")


def lead(sentences: Sequence[str], k: int) -> list[int]:
    """The first ``k`` sentences."""
    return list(range(min(k, len(sentences))))


class MiniLMEmbedder:
    """Mean-pooled, L2-normalised sentence embeddings from the packaged all-MiniLM-L6-v2."""

    def __init__(self, backbone: str = PACKAGED_BACKBONE, device: str = "cpu", batch_size: int = 32) -> None:
        path = bb.resolve_backbone(backbone)
        self.tokenizer = bb.load_tokenizer(path)
        self.model = bb.load_encoder(path)
        self.device = bb.resolve_device(device)
        self.model.to(self.device)
        self.batch_size = batch_size

    def __call__(self, sentences: Sequence[str]) -> np.ndarray:
        """``[n, hidden]`` unit vectors."""
        out = []
        with bb.inference_mode(self.model):
            for b in range(0, len(sentences), self.batch_size):
                batch = self.tokenizer(
                    list(sentences[b : b + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=128,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 384), dtype=np.float32)


def kmeans_select(vectors: np.ndarray, k: int, seed: int = 0) -> list[int]:
    """One sentence nearest each of ``k`` K-Means centroids (distinct sentences)."""
    from sklearn.cluster import KMeans

    n = len(vectors)
    if n <= k:
        return list(range(n))
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(vectors)
    chosen: list[int] = []
    for centre in km.cluster_centers_:
        dist = np.linalg.norm(vectors - centre, axis=1)
        for i in np.argsort(dist):
            if int(i) not in chosen:
                chosen.append(int(i))
                break
    return chosen


def textrank_select(sentences: Sequence[str], k: int, damping: float = 0.85) -> list[int]:
    """TextRank: PageRank over the TF-IDF cosine similarity graph; the ``k`` best sentences."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    n = len(sentences)
    if n <= k:
        return list(range(n))
    try:
        tfidf = TfidfVectorizer(stop_words="english").fit_transform(sentences)
    except ValueError:  # only stop words
        return lead(sentences, k)
    sim = (tfidf @ tfidf.T).toarray()
    np.fill_diagonal(sim, 0.0)
    rows = sim.sum(1, keepdims=True)
    trans = np.divide(sim, rows, out=np.full_like(sim, 1.0 / n), where=rows > 0)
    rank = np.full(n, 1.0 / n)
    for _ in range(100):
        new = (1 - damping) / n + damping * trans.T @ rank
        if np.abs(new - rank).sum() < 1e-8:
            rank = new
            break
        rank = new
    return [int(i) for i in np.argsort(-rank, kind="stable")[:k]]


def rouge_table(rows: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Mean of each metric per system."""
    return {
        name: {m: float(np.mean([s[m] for s in scores])) if scores else 0.0 for m in METRICS}
        for name, scores in rows.items()
    }


def format_table(table: dict[str, dict[str, float]], n: int, k: int, joiner: str) -> str:
    """A Markdown table (F1 x 100)."""
    lines = [
        f"ROUGE F1 x100 on {n} articles, K={k}, sentences joined by {joiner!r} (rouge-score, stemming on)",
        "",
        "| system | ROUGE-1 | ROUGE-2 | ROUGE-Lsum |",
        "|---|---:|---:|---:|",
    ]
    for name, row in table.items():
        cells = " | ".join(f"{100 * row[m]:.2f}" for m in METRICS)
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)


def evaluate(
    articles: Sequence[PubMedArticle],
    summarizer: Any,
    k: int = 7,
    joiner: str = "\n",
    embedder: Callable[[Sequence[str]], np.ndarray] | None = None,
    baselines: bool = True,
) -> dict[str, dict[str, float]]:
    """ROUGE of the model and the baselines over ``articles``.

    Args:
        articles: Notes with reference abstracts.
        summarizer: Anything with ``summarize(text, k) -> list[SummarySentence]``.
        k: Sentences per summary (Lead-K, K-Means, TextRank, the model).
        joiner: How each article's sentences are joined into its text.
        embedder: Sentence embedder for K-Means (default: :class:`MiniLMEmbedder`).
        baselines: Also score the baselines (else only the model).

    Returns:
        ``{system: {metric: mean F1}}``, in table order.
    """
    from rouge_score import rouge_scorer

    from engine.evaluation.rouge import greedy_oracle, rouge_tokens

    scorer = rouge_scorer.RougeScorer(list(METRICS), use_stemmer=True)
    names = [f"model (summarize --sentences {k})"]
    if baselines:
        names += [
            "Lead-3",
            f"Lead-{k}",
            f"Lead-{k} (dataset sentences)",
            f"K-Means MiniLM (K={k})",
            f"TextRank (K={k})",
            f"Oracle (greedy, <= {k})",
        ]
        embedder = embedder or MiniLMEmbedder()
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in names}

    def add(name: str, reference: str, picked: Sequence[str]) -> None:
        s = scorer.score(reference, "\n".join(picked))
        rows[name].append({m: s[m].fmeasure for m in METRICS})

    for art in tqdm(articles, desc="evaluating", file=sys.stderr):
        text = art.text(joiner)
        ref = art.reference
        out = summarizer.summarize(text, k)
        add(names[0], ref, [s.text for s in sorted(out, key=lambda s: s.start)])
        if not baselines:
            continue
        sents = [text[a:b] for a, b in split_sentences(text)]

        def pick(idx: Sequence[int], sents: list[str] = sents) -> list[str]:
            return [sents[i] for i in sorted(idx)]

        add("Lead-3", ref, pick(lead(sents, 3)))
        add(f"Lead-{k}", ref, pick(lead(sents, k)))
        add(f"Lead-{k} (dataset sentences)", ref, list(art.sentences[:k]))
        add(f"K-Means MiniLM (K={k})", ref, pick(kmeans_select(embedder(sents), k)))
        add(f"TextRank (K={k})", ref, pick(textrank_select(sents, k)))
        oracle = greedy_oracle([rouge_tokens(s) for s in sents], rouge_tokens(" ".join(art.abstract)), k)
        add(f"Oracle (greedy, <= {k})", ref, pick(oracle))
    return rouge_table(rows)


ASSESSMENT_SECTIONS = frozenset({"assessment", "assessment and plan", "diagnoses", "plan", "problem list"})
"""Where a clinical note says what the clinician concluded and will do (canonical section names)."""
CONCLUSION_SECTIONS = frozenset({"assessment", "assessment and plan", "diagnoses"})
"""Where the clinician's conclusion is stated; its first sentence is usually the diagnosis itself."""


def conclusion_lead(text: str, found: Sequence[Any], headers: Sequence[tuple[int, int]]) -> int | None:
    """Start of the first sentence of the note's first conclusion section that is more than its header."""
    bodies = [(s.start, s.end) for s in found if s.name in CONCLUSION_SECTIONS]
    if not bodies:
        return None
    lo, hi = bodies[0]
    return next((start for start, end in split_sentences(text)
                 if lo <= start < hi and not only_header(text, start, end, headers)), None)


def clinical_coverage(notes: Sequence[tuple[str, str]], summarizer: Any, sections: Any) -> dict[str, dict[str, float]]:
    """How the summaries of clinical notes treat their structure, with and without the section priors.

    Over the notes that have an assessment, diagnoses or plan section: the share of summaries (default length)
    holding at least one sentence from such a section, the share of summary sentences from them, the share
    of summary sentences in metadata fields (dictation, keywords) or made of a header alone, and, over the notes
    with an assessment or diagnoses section, the share of summaries holding that section's first statement.
    """
    priors = summarizer.priors
    out: dict[str, dict[str, float]] = {}
    for name, use in (("model alone", None), ("model + section priors", priors)):
        summarizer.priors = use
        with_ap = sentences = from_ap = from_meta = counted = leads = with_lead = 0
        for _, text in notes:
            found = sections.detect(text)
            ap = [(s.start, s.end) for s in found if s.name in ASSESSMENT_SECTIONS]
            if not ap:
                continue
            lead = conclusion_lead(text, found, sections.header_spans(text))
            meta = sections.metadata_spans(text)
            chosen = summarizer.summarize(text)
            counted += 1
            hits = [c for c in chosen if any(a <= c.start < b for a, b in ap)]
            with_ap += bool(hits)
            from_ap += len(hits)
            from_meta += sum(1 for c in chosen if any(a < c.end and c.start < b for a, b, _ in meta))
            sentences += len(chosen)
            if lead is not None:
                leads += 1
                with_lead += any(c.start == lead for c in chosen)
        out[name] = {
            "notes": counted,
            "summaries_with_assessment_or_plan": with_ap / max(counted, 1),
            "sentences_from_assessment_or_plan": from_ap / max(sentences, 1),
            "sentences_from_metadata": from_meta / max(sentences, 1),
            "notes_with_conclusion": leads,
            "summaries_with_conclusion_lead": with_lead / max(leads, 1),
        }
    summarizer.priors = priors
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine evaluate summarizer``: print the ROUGE table (and optionally write it as JSON)."""
    parser = argparse.ArgumentParser(prog="python -m engine evaluate summarizer", description=__doc__)
    parser.add_argument("--data", default=None, help="folder with the split (default: DATA_DIR/pubmed-summarization)")
    parser.add_argument("--split", default="validation", help="validation (default) or train")
    parser.add_argument("--model-dir", default=None, help="model set holding summarizer/ (default: the committed one)")
    parser.add_argument("--sentences", "-k", type=int, default=7, help="summary length K")
    parser.add_argument("--joiner", default="newline", choices=["newline", "space"])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--no-baselines", action="store_true", help="score only the model")
    parser.add_argument("--json", default=None, help="also write the table to this JSON file")
    parser.add_argument(
        "--clinical", type=int, default=0, metavar="N",
        help="also measure, on the first N MTSamples reports, how often summaries hold the assessment/plan",
    )
    parser.add_argument(
        "--clinical-from", type=int, default=0, metavar="I",
        help="with --clinical: start at the I-th report (sorted by name), e.g. to score a held-out part",
    )
    parser.add_argument(
        "--update-metrics", action="store_true", help="record the table in the model folder's metrics.json"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)

    settings = Settings().with_overrides(model_dir=args.model_dir, device=args.device)
    data = Path(args.data) if args.data else settings.data_dir
    articles = list(read_pubmed(split_path(data, args.split), args.limit))
    if not articles:
        raise EngineError(ErrorCode.DATA_NOT_FOUND, f"no articles in {split_path(data, args.split)}")
    from engine.summarizer import load

    summarizer = load(settings)
    joiner = "\n" if args.joiner == "newline" else " "
    t0 = time.perf_counter()
    table = evaluate(articles, summarizer, args.sentences, joiner, baselines=not args.no_baselines)
    print(format_table(table, len(articles), args.sentences, joiner))
    print(f"\nmodel {summarizer.version}; {time.perf_counter() - t0:.1f} s")
    clinical = None
    if args.clinical:
        from engine.sections import load as load_sections

        folder = settings.data_dir / "mtsamples"
        notes = [(p.stem, p.read_text(encoding="utf-8", errors="replace")) for p in sorted(folder.glob("*.txt"))]
        part = notes[args.clinical_from : args.clinical_from + args.clinical]
        clinical = clinical_coverage(part, summarizer, load_sections(settings))
        span = f"{args.clinical_from + 1}-{args.clinical_from + len(part)}"
        print(f"\nclinical notes ({span} of the MTSamples reports in {folder}, default summary length):")
        for name, row in clinical.items():
            print(f"  {name:<24} " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                             for k, v in row.items()))
    payload = {
        "split": args.split,
        "articles": len(articles),
        "k": args.sentences,
        "joiner": args.joiner,
        "model_version": summarizer.version,
        "rouge_f1": table,
    }
    if clinical is not None:
        payload["clinical"] = clinical
    if args.json:
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    if args.update_metrics:
        path = Path(settings.model_dir) / "summarizer" / "metrics.json"
        metrics = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        metrics[f"{args.split}_{args.joiner}"] = payload
        path.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return 0
