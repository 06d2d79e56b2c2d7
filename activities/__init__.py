"""Temporal activities; `worker_activities` is what a worker runs.

- the context operations (`db.insert`, `cache.get`, `http.request`, `crm.*` …): one activity per
  operation, generated from `happ_integ.ops` (`activities.context_ops`);
- the call's own (`call.begin`, `call.record`, `voice.originate`, `elevenlabs.get_conversation`,
  `queue.*`): methods of `activities.calls.CallActivities`;
- the campaign's (`campaign.begin`, `campaign.start_calls`, `campaign.stop_calls` …):
  `activities.campaigns.CampaignActivities`;
- `analysis.analyze`: what an answered call came to (`activities.analysis`);
- `retention.purge_documents`: old call documents deleted (`activities.retention`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio.client import Client

from activities.analysis import AnalysisActivities
from activities.calls import CallActivities
from activities.campaigns import CampaignActivities
from activities.context_ops import context_activities
from activities.retention import RetentionActivities
from happ_integ.calls.contracts import CallControl
from happ_integ.ops import Resources


def worker_activities(resources: Resources, client: Client, control: CallControl) -> list[Callable[..., Any]]:
    """Every activity a worker registers, bound to this process's resources and Temporal client;
    `control` starts workflows for the call's activities (`control.client.TemporalCallControl`)."""
    return [
        *context_activities(resources),
        *CallActivities(resources, client, control).all(),
        *CampaignActivities(resources, control).all(),
        AnalysisActivities(resources).analyze,
        RetentionActivities(resources).purge_documents,
    ]


__all__ = ["worker_activities"]
