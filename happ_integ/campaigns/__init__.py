"""Campaigns: many recipients called as one thing an operator starts, pauses, resumes, retries
and reads. The pure parts live here (statuses, settings, the messages of the `Campaign`
workflow, checking a list of recipients); the table is `happ_integ.stores.campaigns`, the
workflow `workflows.campaign`, the routes `api.routes.campaigns`.
"""
