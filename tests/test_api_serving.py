"""How the service shares the engine and refreshes its monitoring gauges, in this process: the thread settings,
the settings from the environment, several engine threads on one real pipeline, a failing report refresh."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from api.inference import InferenceWorker, serving_threads
from api.monitor import STATISTICS, MonitorGauges, MonitorRefresher, report_builder
from api.settings import ApiSettings

NOTES = [
    "Patient denies chest pain. History of hypertension treated with lisinopril.",
    "Type 2 diabetes mellitus, started on metformin. Chest X-ray was normal.",
    "No fever. Mother had breast cancer. Possible pneumonia; start amoxicillin.",
    "Chronic kidney disease stage 3. Continue furosemide. Echocardiogram ordered.",
]


@pytest.mark.parametrize(("engine", "torch", "cpus", "expected"), [
    (0, 0, 2, (2, 1)),    # the 2-core target: two engine threads of one torch thread each
    (0, 0, 1, (1, 1)),
    (0, 0, 16, (4, 4)),   # at most 4 engine threads; the cores shared out among them
    (1, 0, 2, (1, 2)),    # the former design: one thread with every core
    (3, 5, 2, (3, 5)),    # explicit settings win
])
def test_serving_threads(engine: int, torch: int, cpus: int, expected: tuple[int, int]):
    assert serving_threads(engine, torch, cpus) == expected


def test_settings_from_the_environment():
    env = {"CLINICAL_NLP_API_PORT": "9001", "CLINICAL_NLP_API_ENGINE_THREADS": "3",
           "CLINICAL_NLP_API_REQUEST_TIMEOUT_S": "2.5", "CLINICAL_NLP_API_DB_URL": "sqlite:///x.sqlite",
           "CLINICAL_NLP_API_DEVICE": "cpu", "CLINICAL_NLP_API_HOST": ""}
    s = ApiSettings.from_env(env)
    assert (s.port, s.engine_threads, s.request_timeout_s, s.db_url, s.device) == (9001, 3, 2.5, "sqlite:///x.sqlite",
                                                                                  "cpu")
    assert s.host == ApiSettings().host  # empty means unset
    assert ApiSettings.from_env({}) == ApiSettings()
    with pytest.raises(ValueError, match="CLINICAL_NLP_API_PORT='eighty' is not a valid int"):
        ApiSettings.from_env({"CLINICAL_NLP_API_PORT": "eighty"})
    with pytest.raises(ValueError, match="monitor_interval_s must not be negative"):
        ApiSettings.from_env({"CLINICAL_NLP_API_MONITOR_INTERVAL_S": "-1"})
    with pytest.raises(ValueError, match="workers must be positive"):
        ApiSettings(workers=0)


def test_engine_threads_share_one_pipeline_and_give_the_same_results(pipeline):
    """Two engine threads on the real pipeline: every job answered as ``Pipeline.analyze`` answers it alone, the
    work spread over both threads, calls and priorities served, and the threads stopped."""
    expected = [[(e.start, e.end, e.label, e.traits, [c.code for c in e.codes]) for e in pipeline.analyze(t).entities]
                for t in NOTES]
    worker = InferenceWorker(lambda: pipeline, threads=2, infer_batch=2)
    worker.start()
    assert worker.loaded.wait(60) and worker.load_error is None

    def which(_pipeline: object, _result: object) -> str:  # the after-hook runs on the engine thread: name it
        return threading.current_thread().name

    futures = [worker.analyze(NOTES[i % len(NOTES)], f"n{i}", ("routine", "stat")[i % 2], which) for i in range(24)]
    linked = worker.call(lambda p: p.link("heart attack"), priority="urgent")
    names = set()
    for i, future in enumerate(futures):
        result, name = future.result(120)
        names.add(name)
        assert result.id == f"n{i}"
        assert [(e.start, e.end, e.label, e.traits, [c.code for c in e.codes]) for e in result.entities] == \
            expected[i % len(NOTES)]
    assert linked.result(60)["codes"][0]["code"].startswith("I2")
    assert names == {"inference-0", "inference-1"} and worker.alive
    worker.stop()
    assert not worker.alive and worker.depth == 0


def test_a_failed_load_fails_every_job_and_stops_the_threads():
    def load() -> None:
        raise OSError("no model folder")

    worker = InferenceWorker(load, threads=2)
    worker.start()
    assert worker.loaded.wait(10)
    assert isinstance(worker.load_error, OSError)
    with pytest.raises(OSError):
        worker.analyze("x").result(10)
    worker.stop()
    assert not worker.alive


def test_monitor_gauges_of_an_empty_store_and_a_failed_refresh(tmp_path: Path):
    """The real report of a store with no analysis: every statistic NaN, no alert; a failing report is counted,
    logged by type and leaves the gauges as they were."""
    from db.session import init_db

    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    init_db(url)
    registry = CollectorRegistry()
    gauges = MonitorGauges(registry)
    refresher = MonitorRefresher(gauges, report_builder(url), interval=3600)
    assert refresher.refresh() and refresher.refreshes == 1
    for name in STATISTICS:
        assert math.isnan(registry.get_sample_value("api_monitor_value", {"statistic": name})), name
        assert registry.get_sample_value("api_monitor_alert", {"statistic": name}) == 0
    assert registry.get_sample_value("api_monitor_analyses") == 0
    stamp = registry.get_sample_value("api_monitor_last_refresh_timestamp_seconds")
    assert stamp > 0

    def broken() -> dict:
        raise OSError("database is locked")

    failing = MonitorRefresher(gauges, broken, interval=3600)
    assert not failing.refresh()
    assert registry.get_sample_value("api_monitor_refresh_errors_total", {"error": "OSError"}) == 1
    assert registry.get_sample_value("api_monitor_last_refresh_timestamp_seconds") == stamp
    assert b"database is locked" not in generate_latest(registry)


def test_the_refresh_thread_runs_on_its_interval_and_stops(tmp_path: Path):
    from db.session import init_db

    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    init_db(url)
    refresher = MonitorRefresher(MonitorGauges(CollectorRegistry()), report_builder(url), interval=0.2)
    refresher.start()
    deadline = threading.Event()
    for _ in range(100):
        if refresher.refreshes >= 2:
            break
        deadline.wait(0.1)
    refresher.stop()
    assert refresher.refreshes >= 2
    done = refresher.refreshes
    deadline.wait(0.5)
    assert refresher.refreshes == done  # stopped
