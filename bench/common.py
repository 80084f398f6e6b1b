"""Shared helpers of the benchmark scripts: the machine they ran on, the notes they run on, percentiles, memory.

Every benchmark prints :func:`machine_info` first, so a figure is never separated from the machine behind it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python bench/x.py` from anywhere
    sys.path.insert(0, str(REPO))


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else what :mod:`platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus() -> int:
    """CPUs this process may run on (the affinity mask where there is one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def machine_info(device: str | None = None) -> dict[str, Any]:
    """What a figure depends on: CPU, cores, memory, Python, torch and its threads, transformers, the GPU."""
    import torch

    info: dict[str, Any] = {
        "host": platform.node(),
        "cpu": cpu_model(),
        "cpus_usable": usable_cpus(),
        "cpus_total": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gb"] = round(pages * page_size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    with contextlib.suppress(OSError):
        # Other work on the machine inflates wall-clock figures: record how busy it was.
        info["load_average_1m"] = round(os.getloadavg()[0], 2)
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    if device is not None:
        info["device"] = device
    return info


def print_header(title: str, device: str | None = None, **extra: Any) -> dict[str, Any]:
    """Print the benchmark's title and machine (one ``key: value`` per line); returns the machine info."""
    info = machine_info(device)
    info.update(extra)
    print(f"== {title} ==")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    for key, value in info.items():
        print(f"{key}: {value}")
    print()
    return info


def set_threads(threads: int | None) -> int:
    """Limit torch (and BLAS) to ``threads`` CPU threads; ``None`` keeps the default. Returns the count in use."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def default_mtsamples(data_dir: str | Path | None = None) -> Path:
    """The MTSamples folder: ``data_dir`` or ``Settings().data_dir`` (``CLINICAL_DATA_DIR``), then ``mtsamples``."""
    if data_dir is None:
        from engine.settings import Settings

        data_dir = Settings().data_dir
    path = Path(data_dir)
    # A folder holding the .txt reports itself is taken as is (any name), else its mtsamples/ sub-folder.
    return path if path.name == "mtsamples" or any(path.glob("*.txt")) else path / "mtsamples"


def notes_parser(doc: str, limit: int, threads: int) -> argparse.ArgumentParser:
    """The options of a CPU benchmark over MTSamples notes, its own added after: ``--data``, ``--limit`` (0: all),
    ``--threads`` (torch CPU threads) and ``--json``; the description is the first paragraph of ``doc``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--data", help="MTSamples folder or the shared data folder (default: Settings().data_dir)")
    parser.add_argument("--limit", type=int, default=limit, help=f"notes, in name order (default {limit}; 0 = all)")
    parser.add_argument("--threads", type=int, default=threads, help=f"torch CPU threads (default {threads})")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    return parser


def start_on_notes(args: argparse.Namespace, title: str) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
    """What such a benchmark does first: set the threads, print the header (CPU), read the notes.

    Returns:
        The torch threads in use, the machine info and the ``(id, text)`` notes.
    """
    threads = set_threads(args.threads)
    info = print_header(title, device="cpu")
    return threads, info, load_notes(default_mtsamples(args.data), args.limit or None)


def load_notes(folder: str | Path, limit: int | None = None) -> list[tuple[str, str]]:
    """``(id, text)`` of the ``.txt`` reports in ``folder``, in name order; the first ``limit`` when given.

    Raises:
        SystemExit: The folder is missing or holds no reports (benchmarks need the real notes).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SystemExit(f"no notes folder at {folder} (give --data DIR or set CLINICAL_DATA_DIR)")
    notes = []
    for path in sorted(folder.glob("*.txt")):
        notes.append((path.stem, path.read_text(encoding="utf-8", errors="replace")))
        if limit is not None and len(notes) >= limit:
            break
    if not notes:
        raise SystemExit(f"no .txt notes in {folder}")
    return notes


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation, as numpy's default."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(values: Sequence[float]) -> dict[str, float]:
    """Mean, p50, p95, p99 and max of ``values``."""
    return {
        "mean": statistics.fmean(values) if values else float("nan"),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / 2**20


def current_rss_mb() -> float:
    """Resident memory of this process now, in MiB (``/proc/self/statm``; falls back to the peak)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def verdict(value: float, target: float, higher_is_better: bool) -> str:
    """``PASS``/``FAIL`` against a target, with the comparison written out."""
    ok = value >= target if higher_is_better else value <= target
    sign = ">=" if higher_is_better else "<="
    return f"{'PASS' if ok else 'FAIL'} (target {sign} {target:g})"


def emit_json(path: str | None, payload: dict[str, Any]) -> None:
    """Write the figures as JSON to ``path`` too (when given), for docs/benchmarks.md and comparisons."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def load_ner_stage(
    model_dir: str | Path | None = None,
    backbone: str | Path | None = None,
    device: str = "cpu",
    batch_size: int | None = None,
    ner_model: str | None = None,
) -> Any:
    """The engine's NER stage as ``analyze`` loads it (the folder ``Settings.ner_model`` selects, its windows and
    CPU quantisation), optionally on a backbone folder given explicitly (a machine without the packaged MiniLM).

    Args:
        model_dir: Model set (``ner/`` and ``ner_accurate/`` inside); default the committed one.
        backbone: Local backbone folder overriding the one the NER config names.
        device: ``cpu`` or ``cuda``.
        batch_size: Windows per forward pass (default: the engine's setting).
        ner_model: ``fast`` or ``accurate`` (default: the setting, ``CLINICAL_NLP_NER_MODEL``).
    """
    from engine.ner import load_folder, model_folder
    from engine.settings import Settings

    settings = Settings().with_overrides(model_dir=model_dir, ner_model=ner_model, batch_size=batch_size)
    return load_folder(model_folder(settings), settings, device=device, backbone=backbone)
