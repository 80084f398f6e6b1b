"""Benchmark: summarising a 1,000-word clinical note on CPU (p50/p95 ms), next to sentence splitting alone.

Usage: ``python bench/bench_summarizer.py [--words 1000] [--runs 20] [--device cpu] [--model-dir DIR [DIR ...]]``

Prints the machine (CPU count, torch version and threads, device, load average), the note's size (words,
sentences, encoder windows, tokens), and per-call latency of ``Summarizer.summarize(text, None)`` beside the
segmentation step on its own. Several model sets given to ``--model-dir`` (``assets/models`` is the committed
default) are timed in turns within each run, with each one's p50 as a ratio to the first one's, so candidates
compare fairly on a shared, busy machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from engine.sentences import split_sentences
from engine.settings import Settings
from engine.summarizer import encode_sentences, load

SECTIONS = {
    "CHIEF COMPLAINT": ["Shortness of breath and bilateral leg swelling for one week."],
    "HISTORY OF PRESENT ILLNESS": [
        "The patient is a 72-year-old woman with a history of heart failure with reduced ejection fraction, "
        "atrial fibrillation on apixaban, type 2 diabetes mellitus and chronic kidney disease stage 3.",
        "She reports progressive dyspnea on exertion over the past week, now short of breath after walking ten feet.",
        "She sleeps on three pillows and wakes up at night gasping for air.",
        "She notes a weight gain of about 4 kg and increasing swelling of both legs.",
        "She admits to eating canned soups and missing several doses of furosemide because of travel.",
        "She denies chest pain, palpitations, fever, cough productive of sputum, or syncope.",
        "She was seen by Dr. Patel in clinic two weeks ago, when her weight was 78 kg.",
    ],
    "PAST MEDICAL HISTORY": [
        "1. Heart failure with reduced ejection fraction, last echocardiogram with an ejection fraction of 30%.",
        "2. Paroxysmal atrial fibrillation.",
        "3. Type 2 diabetes mellitus, last hemoglobin A1c 7.9%.",
        "4. Chronic kidney disease stage 3, baseline creatinine 1.4 mg/dL.",
        "5. Hypertension.",
    ],
    "MEDICATIONS": [
        "Furosemide 40 mg p.o. b.i.d., carvedilol 12.5 mg b.i.d., sacubitril-valsartan 49/51 mg b.i.d., "
        "apixaban 5 mg b.i.d., metformin 500 mg daily, and atorvastatin 40 mg at bedtime.",
    ],
    "SOCIAL HISTORY": [
        "She lives with her husband, does not smoke, and drinks alcohol rarely.",
    ],
    "PHYSICAL EXAMINATION": [
        "VITALS: T 98.2. P 96. BP 148/88. RR 24. SpO2 91% on room air.",
        "She is in mild respiratory distress, speaking in short sentences.",
        "Jugular venous pressure is elevated to the angle of the jaw.",
        "There are bibasilar crackles to the mid lung fields.",
        "Heart sounds are irregularly irregular with an S3 gallop.",
        "There is 3+ pitting edema of both legs to the knees.",
    ],
    "LABORATORY DATA": [
        "Sodium 132, potassium 5.1, creatinine 1.9 mg/dL, BNP 2450 pg/mL, troponin 0.04 ng/mL.",
        "Chest x-ray shows cardiomegaly, cephalization of vessels and small bilateral pleural effusions.",
        "ECG shows atrial fibrillation with a ventricular rate of 98 and no acute ST changes.",
    ],
    "HOSPITAL COURSE": [
        "She was admitted to the telemetry unit and started on intravenous furosemide 80 mg twice daily.",
        "Net diuresis was 2 to 3 liters per day, and her breathing improved over three days.",
        "Creatinine rose to 2.1 mg/dL on day 2 and returned to 1.6 mg/dL by discharge.",
        "Metformin was held because of the acute kidney injury.",
        "Carvedilol was continued and her heart rate was controlled in the 70s.",
        "A repeat echocardiogram showed an ejection fraction of 25% with moderate functional mitral regurgitation.",
        "Cardiology advised continuing guideline-directed therapy and considering a defibrillator as an outpatient.",
        "She was seen by the dietitian for education on a 2 g sodium diet and fluid restriction.",
        "By discharge she walked the hallway without oxygen and her weight was 74 kg.",
    ],
    "ASSESSMENT AND PLAN": [
        "1. Acute on chronic systolic heart failure exacerbation, likely from dietary salt and a missed diuretic.",
        "Discharge on furosemide 60 mg p.o. b.i.d. with daily weights and a call if weight rises by more than 1 kg.",
        "2. Acute kidney injury on chronic kidney disease, improving.",
        "Repeat basic metabolic panel in one week.",
        "3. Atrial fibrillation, rate controlled; continue apixaban and carvedilol.",
        "4. Type 2 diabetes mellitus; resume metformin when creatinine is back to baseline.",
        "Follow up with cardiology in one week and with her primary care physician in two weeks.",
    ],
}


def clinical_note(words: int) -> str:
    """A discharge-summary-style note of about ``words`` words (sections repeated as follow-up days if needed)."""
    parts: list[str] = []
    day = 0
    while sum(len(p.split()) for p in parts) < words:
        for header, lines in SECTIONS.items():
            title = header if day == 0 else f"{header} (DAY {day + 1})"
            parts.append(f"{title}:\n" + "\n".join(lines))
            if sum(len(p.split()) for p in parts) >= words:
                break
        day += 1
    return "\n\n".join(parts)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--words", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--model-dir",
        nargs="*",
        default=[None],
        help="model set(s) holding summarizer/; several are timed in turns, run by run, so their figures compare",
    )
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    text = clinical_note(args.words)
    spans = split_sentences(text)
    loaded = []
    for model_dir in args.model_dir or [None]:
        t0 = time.perf_counter()
        summarizer = load(Settings().with_overrides(model_dir=model_dir, device=args.device))
        loaded.append((model_dir, summarizer, time.perf_counter() - t0))
        for _ in range(3):
            summarizer.summarize(text, None)

    seg_ms: list[float] = []
    sum_ms: list[list[float]] = [[] for _ in loaded]
    cpu_ms: list[list[float]] = [[] for _ in loaded]
    for _ in range(args.runs):
        t = time.perf_counter()
        split_sentences(text)
        seg_ms.append((time.perf_counter() - t) * 1000)
        # Models take turns within each run, so a change in the machine's load touches them all alike.
        for i, (_, summarizer, _) in enumerate(loaded):
            c, t = time.process_time(), time.perf_counter()
            summarizer.summarize(text, None)
            sum_ms[i].append((time.perf_counter() - t) * 1000)
            cpu_ms[i].append((time.process_time() - c) * 1000)

    load_avg = os.getloadavg() if hasattr(os, "getloadavg") else ("n/a",)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, load average {load_avg}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {loaded[0][1].device}")
    print(f"runs: {args.runs}; note: {len(text.split())} words, {len(spans)} sentences")
    # CPU ms: the process's CPU time per call (all threads); on a busy machine it moves far less than wall time.
    print(
        "| step | model | layers | windows | tokens | k | load s | p50 ms | p95 ms | mean ms | CPU p50 ms | "
        "p50 / first | CPU p50 / first |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| sentence split only | | | | | | | {statistics.median(seg_ms):.1f} | {percentile(seg_ms, 0.95):.1f} | "
        f"{statistics.mean(seg_ms):.1f} | | | |"
    )
    first, first_cpu = statistics.median(sum_ms[0]), statistics.median(cpu_ms[0])
    for (model_dir, summarizer, load_s), values, cpu in zip(loaded, sum_ms, cpu_ms, strict=True):
        enc = encode_sentences(
            summarizer.tokenizer,
            [text[s:e] for s, e in spans],
            summarizer.max_length,
            summarizer.config["max_sentence_tokens"],
        )
        tokens = sum(len(w[0]) for w in enc.windows)
        name = summarizer.version + ("" if model_dir is None else f" ({model_dir})")
        p50 = statistics.median(values)
        print(
            f"| summarize (split + score + select) | {name} | {len(summarizer.model.layers)} | {len(enc.windows)} | "
            f"{tokens} | {len(summarizer.summarize(text, None))} | {load_s:.2f} | {p50:.1f} | "
            f"{percentile(values, 0.95):.1f} | {statistics.mean(values):.1f} | {statistics.median(cpu):.1f} | "
            f"{p50 / first:.2f} | {statistics.median(cpu) / first_cpu:.2f} |"
        )
    for (_, summarizer, _), values in zip(loaded, sum_ms, strict=True):
        p50, p95 = statistics.median(values), percentile(values, 0.95)
        verdict = "met" if p50 <= 300 else "NOT met"
        print(f"target 300 ms p50 on CPU, {summarizer.version}: {verdict} on this machine (p95 {p95:.0f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
