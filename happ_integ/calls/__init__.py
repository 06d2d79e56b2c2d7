"""The outbound call's rules and shapes, shared by the gateway, the workflows and the activities.

- `config`: `CallHandling`, `CallingHours` (the `call_handling` config);
- `models`: the call's state, its messages, the lookup/postcall handlers' payloads;
- `rules`: what happens after an attempt; `attempts`: what a webhook does to the attempt on the
  line (the decisions of `OutboundCall`'s updates); `payloads`: what the call-flow handlers get;
- `clock`: the calling window (in one zone, or open in all of a callee's zones) and the agent's
  date; `zones`: which zones a number is in;
- `contracts`: the messages between the call's workflows, activities and client;
- `contact_policy`: the `contact_policy` config (attempt caps per number);
- `queue_order`: whom the `CallQueue` serves next;
- `phones`: E.164 normalisation and masking.

All of it is pure (no I/O), so workflow code uses it as it is.
"""
