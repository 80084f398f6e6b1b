"""REST API latency and throughput: 8 concurrent clients over 200 shared MTSamples notes, beside in-process calls.

Each mode sends every note once; concurrent callers pull notes from one shared queue. The modes run in one run
(the machine is shared, so only figures of the same run are compared), on the first half of the notes in this
order, then on the second half in the reverse order, so a load that drifts during the run favours none of them:

- ``inproc-1``: one caller, ``Pipeline.analyze`` in this process (the engine alone, no contention);
- ``api-8``: 8 HTTP clients against ``python -m api`` (a real uvicorn process, its default settings);
- ``inproc-8``: 8 threads calling the same in-process ``Pipeline.analyze`` at once (the same load without HTTP);
- ``api-1``: one HTTP client (the HTTP and queue overhead alone).

``--stats-cost`` instead times, note by note in one process, ``Pipeline.analyze`` beside what the API adds after
each predicted note: the monitoring statistics (``api.store.record_stats``: profile + one SQLite transaction).

Latency is per note, wall clock, from the caller's side. Skips cleanly (exit 0) without ``../shared/data``.

Run from the repository root::

    python bench/bench_api.py                    # 200 notes, 8 clients
    python bench/bench_api.py --notes 50 --json out.json
    python bench/bench_api.py --stats-cost --notes 100
"""

from __future__ import annotations

import argparse
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, default_mtsamples, emit_json, load_notes, print_header, set_threads, summary, verdict

TARGET_RATIO = 2.0


def drive(notes: list[tuple[str, str]], callers: int, call: Callable[[Any, str, str], Any],
          make_ctx: Callable[[], Any] = lambda: None) -> dict[str, Any]:
    """Send every note once through ``call(ctx, id, text)`` from ``callers`` threads.

    Returns:
        ``{"latencies": [ms per note], "wall_s", "notes", "errors"}`` (see :func:`figures`).
    """
    work: queue.Queue = queue.Queue()
    for note in notes:
        work.put(note)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(callers + 1)

    def run() -> None:
        ctx = make_ctx()
        barrier.wait()
        while True:
            try:
                note_id, text = work.get_nowait()
            except queue.Empty:
                break
            t0 = time.perf_counter()
            try:
                call(ctx, note_id, text)
            except Exception as exc:  # counted and shown; a benchmark must not hide failures
                with lock:
                    errors.append(type(exc).__name__)
            with lock:
                latencies.append((time.perf_counter() - t0) * 1000)

    threads = [threading.Thread(target=run) for _ in range(callers)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"latencies": latencies, "wall_s": wall, "notes": len(notes), "errors": len(errors)}


def figures(parts: list[dict[str, Any]]) -> dict[str, float]:
    """Percentiles over every part's latencies; notes/s as all notes over all the parts' wall time."""
    latencies = [ms for part in parts for ms in part["latencies"]]
    wall = sum(part["wall_s"] for part in parts)
    notes = sum(part["notes"] for part in parts)
    return {**summary(latencies), "notes_per_s": notes / wall, "wall_s": wall,
            "errors": sum(part["errors"] for part in parts)}


class ApiServer:
    """``python -m api`` on a free port with a fresh SQLite store and one key."""

    def __init__(self, tmp: Path, device: str) -> None:
        from db.keys import create_key
        from db.session import init_db, session_scope

        url = f"sqlite:///{tmp / 'bench.sqlite'}"
        with session_scope(init_db(url)) as session:
            self.key = create_key(session, reviewer="bench")[1]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "CLINICAL_NLP_API_DEVICE": device, "CLINICAL_NLP_API_LOG_LEVEL": "warning"}
        self.log = (tmp / "server.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "api", "--port", str(port), "--db-url", url], cwd=REPO,
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{port}/api/v1"

    def wait_ready(self, timeout: float = 300) -> dict[str, Any]:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("the API server exited; see its log")
            try:
                r = httpx.get(f"{self.base}/ready", timeout=30)
                if r.status_code == 200:
                    return r.json()
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise SystemExit(f"the API server was not ready within {timeout} s")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def stats_cost(notes: list[tuple[str, str]], pipeline: Any) -> dict[str, Any]:
    """Per note: analyse it, then store its monitoring statistics in a fresh SQLite file; both timed."""
    from api import store
    from db.session import init_db

    analyse, record = [], []
    with tempfile.TemporaryDirectory(prefix="bench-api-stats-") as tmp:
        engine = init_db(f"sqlite:///{tmp}/stats.sqlite")
        for note_id, text in notes:
            t0 = time.perf_counter()
            result = pipeline.analyze(text, note_id)
            t1 = time.perf_counter()
            store.record_stats(engine, text, result, note_id)
            analyse.append((t1 - t0) * 1000)
            record.append((time.perf_counter() - t1) * 1000)
        engine.dispose()
    rows = {"analyze": summary(analyse), "record_stats": summary(record)}
    print(f"{'step':<14}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    for name, row in rows.items():
        print(f"{name:<14}{row['p50']:>10.1f}{row['p95']:>10.1f}{row['mean']:>10.1f}")
    share = sum(record) / sum(analyse)
    print(f"record_stats / analyze (total time): {share:.3f}")
    return {"rows": rows, "share": share}


def run_modes(notes: list[tuple[str, str]], modes: dict[str, tuple[int, Callable, Callable]]) -> dict[str, Any]:
    """Each mode over each half of the notes, in the order A B C, then C B A on the second half.

    The machine is shared: a load that rises or falls during the run would favour the modes that ran at the quiet
    end. Mirroring the order on the two halves cancels a steady drift; every mode still sends every note once.
    """
    half = len(notes) // 2
    names = list(modes)
    parts: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for chunk, order in ((notes[:half], names), (notes[half:], names[::-1])):
        for name in order:
            callers, call, make_ctx = modes[name]
            parts[name].append(drive(chunk, callers, call, make_ctx))
    return {name: figures(parts[name]) for name in names}


def report(rows: dict[str, dict[str, float]], clients: int) -> dict[str, float]:
    """Print the table and the ratios; returns the ratios."""
    print(f"{'mode':<12}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'notes/s':>10}{'errors':>8}")
    for name, row in rows.items():
        print(f"{name:<12}{row['p50']:>10.1f}{row['p95']:>10.1f}{row['p99']:>10.1f}{row['mean']:>10.1f}"
              f"{row['notes_per_s']:>10.2f}{row['errors']:>8}")
    api_n, local_n, local_1 = rows[f"api-{clients}"], rows[f"inproc-{clients}"], rows["inproc-1"]
    ratios = {"p95_same_load": api_n["p95"] / local_n["p95"], "p95_vs_alone": api_n["p95"] / local_1["p95"],
              "throughput_vs_alone": api_n["notes_per_s"] / local_1["notes_per_s"],
              "throughput_same_load": api_n["notes_per_s"] / local_n["notes_per_s"]}
    print(f"\np95 api-{clients} / inproc-{clients} (same concurrency): {ratios['p95_same_load']:.2f} "
          f"{verdict(ratios['p95_same_load'], TARGET_RATIO, higher_is_better=False)}")
    print(f"p95 api-{clients} / inproc-1 (engine alone, no queueing): {ratios['p95_vs_alone']:.2f} "
          f"{verdict(ratios['p95_vs_alone'], TARGET_RATIO, higher_is_better=False)}")
    print(f"throughput api-{clients} / inproc-1: {ratios['throughput_vs_alone']:.2f}x, "
          f"api-{clients} / inproc-{clients}: {ratios['throughput_same_load']:.2f}x")
    return ratios


def main(argv: list[str] | None = None) -> int:
    """Run the modes and print their figures side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared data folder or an MTSamples folder (default CLINICAL_DATA_DIR)")
    parser.add_argument("--notes", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="torch threads of the in-process modes (0: torch's default); the server uses its settings")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--skip-api-1", action="store_true", help="leave out the one-client HTTP mode (time)")
    parser.add_argument("--stats-cost", action="store_true", help="time the monitoring statistics write only")
    args = parser.parse_args(argv)
    folder = default_mtsamples(args.data)
    if not folder.is_dir():
        print(f"SKIP: no MTSamples notes at {folder} (give --data DIR or set CLINICAL_DATA_DIR)")
        return 0
    import httpx

    from engine import load_pipeline

    set_threads(args.torch_threads)
    notes = load_notes(folder, args.notes)
    chars = sum(len(t) for _, t in notes)
    info = print_header("REST API vs in-process engine", args.device, notes=len(notes), clients=args.clients,
                        mean_note_chars=round(chars / len(notes)))
    pipeline = load_pipeline(device=args.device)
    pipeline.warm()
    if args.stats_cost:
        emit_json(args.json, {"machine": info, **stats_cost(notes, pipeline)})
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        server = ApiServer(Path(tmp), args.device)
        try:
            ready = server.wait_ready()
            headers = {"Authorization": f"Bearer {server.key}"}

            def http_ctx() -> httpx.Client:
                return httpx.Client(base_url=server.base, headers=headers, timeout=600)

            def http_call(client: httpx.Client, note_id: str, text: str) -> None:
                r = client.post("/predict", json={"note_id": note_id, "note_text": text})
                r.raise_for_status()

            def local_call(_ctx: Any, note_id: str, text: str) -> None:
                pipeline.analyze(text, note_id)

            with http_ctx() as c:  # one request each way before timing (connection set-up, first-call caches)
                http_call(c, "warm", notes[0][1])
            modes = {"inproc-1": (1, local_call, lambda: None),
                     f"api-{args.clients}": (args.clients, http_call, http_ctx),
                     f"inproc-{args.clients}": (args.clients, local_call, lambda: None)}
            if not args.skip_api_1:
                modes["api-1"] = (1, http_call, http_ctx)
            load_start = os.getloadavg()
            rows = run_modes(notes, modes)
            load_end = os.getloadavg()
        finally:
            server.stop()
    print(f"server: load {ready['load_seconds']} s, probe {ready['probe_ms']} ms, threads {ready.get('threads')}; "
          f"in-process torch threads {info['torch_threads']}")
    print(f"load average (1, 5, 15 min) at start {load_start}, at end {load_end}")
    ratios = report(rows, args.clients)
    emit_json(args.json, {"machine": info, "rows": rows, "ratios": ratios, "ready": ready,
                          "load_average": {"start": load_start, "end": load_end}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
