"""The operator console: server-rendered pages at `/console` for the people who run the calls.

    app.include_router(console_router)          # api/app.py

Today (calls by status, live; outcomes of the last 24 hours and 7 days; answer rate, short-call
rate, talk time), Campaigns (progress, pause / resume / cancel / retry, the report), a call
(attempts, CRM variables, transcript, analysis, CRM writes, its workflow in the Web UI) and the
do-not-call list. Jinja2 templates in `templates/`, htmx and a stylesheet in `static/`, served by
the gateway itself; signing in and the CSRF tokens are `auth.py`'s. Pages read through the
stores and the API's own route functions; the few reads only the console needs are `happ_integ/stores/call_views.py`.
"""

from api.console.routes import console_router

__all__ = ["console_router"]
