"""The call flow's handlers, collected with `handlers_from`: crm-lookup before dialling, crm-postcall after.

A handler of your own added here with `endpoint="POST /webhook/…"` is served at
/sofa/webhook/… and, like every handler route, takes the integration's WEBHOOK_TOKEN
(`Authorization: Bearer …`) unless it says `auth="none"` (the gateway then warns at start).
"""
