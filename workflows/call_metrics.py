"""The call's own metrics, emitted by `OutboundCall` through `workflow.metric_meter()`.

The meter is replay-safe (nothing is recorded while a worker replays history) and its metrics go
where the worker's SDK runtime sends them: the Prometheus endpoint on `HAPP_METRICS_PORT`
(`happ_integ.telemetry.temporal_runtime`), with the SDK's own labels `namespace`, `task_queue`
and `workflow_type` next to ours. Recording adds no command to the history, so histories written
before these metrics existed replay unchanged.

- `happ_calls_started_total{integration}`, and one counter per way a call ends:
  `happ_calls_completed_total`, `happ_calls_exhausted_total`, `happ_calls_failed_total`,
  `happ_calls_cancelled_total`, `happ_calls_suppressed_total`
- `happ_call_retries_total{integration, outcome}`: attempts retried, by how the attempt ended
  (`outcome="short"`: the short-call retries; `no_answer`, `busy`, `ring_timeout`, …)
- `happ_call_attempts{integration, status}`: attempts per call, recorded when it ends (histogram)
- `happ_call_status_seconds{integration, status}`: time spent in each status, recorded when the
  call leaves it (histogram, seconds)
- `happ_campaign_recipients_total{integration, status}`: a campaign's recipients entering each
  status (their call's, or `cancelled`/`expired` when stopped before it started; the `Campaign`
  workflow counts those). No campaign id label: their number has no bound.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from happ_integ.calls.models import CallStatus, Outcome

STARTED = "happ_calls_started_total"
ENDED = {
    CallStatus.COMPLETED: "happ_calls_completed_total",
    CallStatus.EXHAUSTED: "happ_calls_exhausted_total",
    CallStatus.FAILED: "happ_calls_failed_total",
    CallStatus.CANCELLED: "happ_calls_cancelled_total",
    CallStatus.SUPPRESSED: "happ_calls_suppressed_total",
}
RETRIES = "happ_call_retries_total"
ATTEMPTS = "happ_call_attempts"
STATUS_SECONDS = "happ_call_status_seconds"
CAMPAIGN_RECIPIENTS = "happ_campaign_recipients_total"

# Bucket bounds for the worker's Prometheus exporter (the SDK's defaults suit milliseconds).
HISTOGRAM_BUCKETS: dict[str, list[float]] = {
    ATTEMPTS: [1, 2, 3, 4, 5, 6, 8, 10, 15, 20],
    STATUS_SECONDS: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400, 259200],
}


class CallMetrics:
    """One call's metrics; it remembers when the current status began, from workflow time."""

    def __init__(self, integration: str) -> None:
        self._integration = integration
        self._since: datetime | None = None
        self._instruments: dict[str, Any] = {}

    def _meter(self) -> Any:
        return workflow.metric_meter().with_additional_attributes({"integration": self._integration})

    def _counter(self, name: str, description: str) -> Any:
        if name not in self._instruments:
            self._instruments[name] = self._meter().create_counter(name, description)
        return self._instruments[name]

    def started(self) -> None:
        self._since = workflow.now()
        self._counter(STARTED, "Outbound calls started").add(1)

    def status_changed(self, previous: CallStatus, status: CallStatus) -> None:
        """The time spent in `previous`, when the call moves to another status."""
        now = workflow.now()
        if status == previous and self._since is not None:
            return
        if self._since is not None:
            if STATUS_SECONDS not in self._instruments:
                self._instruments[STATUS_SECONDS] = self._meter().create_histogram_float(
                    STATUS_SECONDS, "Time a call spent in a status, in seconds", "s"
                )
            seconds = max((now - self._since).total_seconds(), 0.0)
            self._instruments[STATUS_SECONDS].record(seconds, {"status": previous.value})
        self._since = now

    def recipient_entered(self, status: str, count: int = 1) -> None:
        """A campaign's recipients moved into `status`."""
        counter = self._counter(CAMPAIGN_RECIPIENTS, "Campaign recipients entering a status")
        counter.add(count, {"status": status})

    def retried(self, outcome: Outcome | str | None) -> None:
        """Another attempt is scheduled after one that ended as `outcome` (`short`: a short call;
        `voicemail`: answered, and the analysis heard a voicemail)."""
        counter = self._counter(RETRIES, "Attempts retried, by how the attempt ended")
        counter.add(1, {"outcome": str(outcome) if outcome is not None else "unknown"})

    def ended(self, status: CallStatus, attempts: int) -> None:
        """The call reached a final status after `attempts` attempts."""
        name = ENDED.get(status)
        if name is None:
            return
        self._counter(name, f"Outbound calls {status.value}").add(1)
        if ATTEMPTS not in self._instruments:
            self._instruments[ATTEMPTS] = self._meter().create_histogram(
                ATTEMPTS, "Attempts a call made, recorded when it ends"
            )
        self._instruments[ATTEMPTS].record(attempts, {"status": status.value})
