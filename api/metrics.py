"""Prometheus metrics of the service (``GET /api/v1/metrics``), on a registry of its own per app."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """The service's counters and histograms."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.latency = Histogram("api_request_seconds", "Request latency per route", ["route", "method"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.requests = Counter("api_requests_total", "Requests per route and status", ["route", "method",
                                                                                        "status"], registry=r)
        self.errors = Counter("api_errors_total", "Error answers (status >= 400) per route and code class",
                              ["route", "status"], registry=r)
        self.entities = Histogram("api_entities_per_note", "Entities found per analysed note",
                                  buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200, 500), registry=r)
        self.confidence = Histogram("api_entity_confidence_mean", "Mean entity confidence per analysed note",
                                    buckets=tuple(i / 10 for i in range(1, 11)), registry=r)
        self.notes = Counter("api_notes_analysed_total", "Notes analysed", registry=r)
        self.engine_batch = Histogram("api_engine_batch_notes", "Notes per engine call (micro-batching)",
                                      buckets=(1, 2, 4, 8, 16, 32), registry=r)
        self.engine_seconds = Histogram("api_engine_batch_seconds", "Engine time per engine call",
                                        buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("api_engine_queue_depth", "Jobs waiting for the engine", registry=r)
        self.feedback = Counter("api_feedback_total", "Feedback decisions stored (replayed ones apart)",
                                ["kind", "replayed"], registry=r)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one finished request."""
        self.latency.labels(route, method).observe(seconds)
        self.requests.labels(route, method, str(status)).inc()
        if status >= 400:
            self.errors.labels(route, str(status)).inc()

    def observe_note(self, scores: list[float]) -> None:
        """Record one analysed note's entity count and mean confidence."""
        self.notes.inc()
        self.entities.observe(len(scores))
        if scores:
            self.confidence.observe(sum(scores) / len(scores))

    def observe_batch(self, notes: int, seconds: float) -> None:
        """Record one engine call (the inference worker's callback)."""
        self.engine_batch.observe(notes)
        self.engine_seconds.observe(seconds)

    def render(self, queue_depth: int) -> bytes:
        """The Prometheus text exposition."""
        self.queue_depth.set(queue_depth)
        return generate_latest(self.registry)
