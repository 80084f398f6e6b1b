"""The monitoring gauges of ``/metrics``: the ``python -m engine monitor`` report, refreshed in the background.

The report (:func:`db.monitor.build`: input drift KL, prediction-drift chi-squared p, mean confidence, entities per
note, label drift, override rates, each statistic with its threshold and alert) reads up to a window of stored
analyses and runs permutation tests, which on a big store takes seconds. So a scrape never computes it: one
daemon thread rebuilds it every ``monitor_interval_s`` seconds and sets the gauges, and a scrape reads whatever the
last refresh left. The thread runs at a lower CPU priority than the engine threads (Linux lets a thread have its
own nice value), so a refresh slows no prediction on a busy machine; it only reads the store (SQLite in WAL mode:
readers do not block the writers).

Gauges (one registry with the service's other metrics):

- ``api_monitor_value{statistic}``: the report's value (``NaN`` while the window is empty or a test is undefined);
- ``api_monitor_alert{statistic}``: 1 when that statistic alerts, else 0;
- ``api_monitor_threshold{statistic,bound}``: its threshold (``bound`` ``low``, ``high`` or ``limit``);
- ``api_monitor_override_rate{scope,key}``: reviewer overrides over decisions, overall and per entity label (the
  report gives it no threshold, so it has no alert flag);
- ``api_monitor_window_notes``, ``api_monitor_analyses``, ``api_monitor_last_refresh_timestamp_seconds`` (when
  the last refresh began reading the store), ``api_monitor_refresh_seconds``, ``api_monitor_refresh_errors_total``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger("api.monitor")

STATISTICS = ("input_drift", "prediction_drift", "mean_confidence", "entities_per_note", "label_drift")
"""The report's statistics that have a threshold, exposed with their alert flag."""
NICE = 10
"""How much lower than the engine threads the refresh thread runs (``nice`` increment)."""


def _number(value: Any) -> float:
    """A gauge value: ``NaN`` for a statistic the report could not compute (``None``)."""
    return math.nan if value is None else float(value)


class MonitorGauges:
    """The gauges of the monitoring report, on ``registry``.

    Args:
        registry: The service's Prometheus registry.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.value = Gauge("api_monitor_value", "Monitoring statistic of the newest window (python -m engine "
                           "monitor)", ["statistic"], registry=r)
        self.alert = Gauge("api_monitor_alert", "1 when the monitoring statistic alerts", ["statistic"], registry=r)
        self.threshold = Gauge("api_monitor_threshold", "Alert threshold of the monitoring statistic",
                               ["statistic", "bound"], registry=r)
        self.override = Gauge("api_monitor_override_rate", "Reviewer overrides (reject, correct) over decisions",
                              ["scope", "key"], registry=r)
        self.window = Gauge("api_monitor_window_notes", "Stored analyses in the monitoring window", registry=r)
        self.analyses = Gauge("api_monitor_analyses", "Stored analyses in the store", registry=r)
        self.refreshed = Gauge("api_monitor_last_refresh_timestamp_seconds", "When the last refresh began reading "
                               "the store: the gauges are as of then (Unix time; 0: not yet)", registry=r)
        self.seconds = Gauge("api_monitor_refresh_seconds", "Time the last refresh took", registry=r)
        self.errors = Counter("api_monitor_refresh_errors_total", "Refreshes that failed (by exception type)",
                              ["error"], registry=r)

    def set_report(self, report: Mapping[str, Any], as_of: float | None = None) -> None:
        """Set every gauge from one report (:func:`db.monitor.build`'s dict) that began reading the store at
        ``as_of`` (Unix time; default now)."""
        stats = report.get("statistics", {})
        for name in STATISTICS:
            stat = stats.get(name)
            if stat is None:  # no stored analysis yet: the window statistics are absent
                self.value.labels(name).set(math.nan)
                self.alert.labels(name).set(0)
                continue
            self.value.labels(name).set(_number(stat["value"]))
            self.alert.labels(name).set(1 if stat["alert"] else 0)
            threshold = stat.get("threshold")
            if isinstance(threshold, list | tuple):  # entities per note: a range
                self.threshold.labels(name, "low").set(float(threshold[0]))
                self.threshold.labels(name, "high").set(float(threshold[1]))
            elif threshold is not None:
                self.threshold.labels(name, "limit").set(float(threshold))
        rates = report.get("override_rates", {})
        self.override.labels("overall", "all").set(_number(rates.get("overall", {}).get("rate")))
        for label, rate in rates.get("by_label", {}).items():
            self.override.labels("label", label).set(_number(rate.get("rate")))
        self.window.set(float(report.get("n_window", 0)))
        self.analyses.set(float(report.get("n_analyses", 0)))
        self.seconds.set(float(report.get("seconds", 0.0)))
        self.refreshed.set(time.time() if as_of is None else as_of)


def report_builder(db_url: str, window: int = 0, model_dir: str = "") -> Callable[[], dict[str, Any]]:
    """A function that builds the monitoring report of the store, as ``python -m engine monitor`` does."""

    def build() -> dict[str, Any]:
        from db.monitor import build as build_report

        return build_report(db_url, window or None, Path(model_dir) if model_dir else None)

    return build


class MonitorRefresher:
    """The daemon thread that rebuilds the report every ``interval`` seconds and sets the gauges.

    Args:
        gauges: Where the report goes.
        build: Builds one report (:func:`report_builder`).
        interval: Seconds between the start of one refresh and the next (the first runs at once).
    """

    def __init__(self, gauges: MonitorGauges, build: Callable[[], Mapping[str, Any]], interval: float) -> None:
        self.gauges = gauges
        self.build = build
        self.interval = interval
        self.refreshes = 0
        """Refreshes that set the gauges."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (no-op when already started)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="monitor-refresh", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to stop and wait for a refresh in progress up to ``timeout`` seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def refresh(self) -> bool:
        """Build the report once and set the gauges; a failure is counted and logged by type, never raised."""
        as_of = time.time()
        try:
            report = self.build()
            self.gauges.set_report(report, as_of)
        except Exception as exc:  # the service must keep serving; the error counter tells the operator
            log.error("monitoring report failed: %s", type(exc).__name__)
            self.gauges.errors.labels(type(exc).__name__).inc()
            return False
        self.refreshes += 1
        return True

    def _run(self) -> None:
        # This thread only, on Linux; elsewhere the refresh runs at the engine's priority.
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
        while not self._stop.is_set():
            started = time.monotonic()
            self.refresh()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
