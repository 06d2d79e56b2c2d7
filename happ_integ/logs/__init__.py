"""Structured logs of handler runs: a console tree for development, JSON lines for production.

    from happ_integ.logs import HandlerLogger, make_sink, redactor, set_default_sink

    set_default_sink(make_sink(settings.log_format))   # once per process; HAPP_LOG_FORMAT
    redactor.add_secret(api_key)             # this value is masked in every line from now on
    log = HandlerLogger(integration="sofa", handler="agent-init", trace_id="abc123")
    log.handler_start({"phone": "+380..."})
    log.step_end("cache.get", 2.0, input={"phone": "+380..."}, output=None)
    log.step_end("creds.get", 1.0, skip_output=True)
    log.info("lookup done", {"records": 1})
    log.handler_end(150.0)

The console sink buffers a run's lines per trace id and prints the whole tree at
`handler:end` (earlier after an error event, or on `flush()` / at exit), so concurrent
runs never interleave. The JSON sink writes one object per line, e.g.
`{"level":"debug","ts":"…","traceId":"abc123","span":"cache.get","event":"output","duration_ms":2,"data":null}`.

Both transports run every event through a `Redactor` (the module-wide `redactor` unless one
is given): values under secret-looking keys (password, secret, token, authorization, api_key,
and any name whose last word is "key") become "***", and registered secret values are
masked wherever they appear. Phone numbers are masked as the call's memo masks them
(`+38099*****73`): values under phone-like keys (phone, phone_number, callee, msisdn …) and any
valid number inside any text, the payload `handler:start` logs included. Data over
`max_data_bytes` (4 KB) is cut with a `…[truncated: N bytes]` marker.

Streams: a transport writes text to any object with `write(str)` (default: the current
`sys.stderr`). To send lines through the `logging` module instead, so operators configure
handlers and levels, pass `LoggerStream(logging.getLogger("happ"))` with a `%(message)s`
formatter; each line becomes one record.

Temporal: wrap the sink in `ReplaySafeSink` (`make_sink` does by default) so a replaying
workflow logs nothing; timestamps come from `workflow.now()` inside workflows. The module
imports only the standard library, `temporalio.workflow` and `phonenumbers`; pass it through the sandbox
(`SandboxRestrictions.default.with_passthrough_modules("happ_integ.logs")`) so workflows
share the process's sink and `redactor`. Create transports outside workflows.
"""

from happ_integ.logs.console import ConsoleTransport, pretty
from happ_integ.logs.events import (
    LEVELS,
    MAX_DATA_BYTES,
    NOTHING,
    STEP_EVENTS,
    Level,
    LogEvent,
    LogSink,
    NothingType,
    SupportsWrite,
    describe_error,
    now,
)
from happ_integ.logs.logger import HandlerLogger
from happ_integ.logs.redact import MASK, Redactor, redactor, truncate
from happ_integ.logs.sinks import (
    CaptureSink,
    MultiSink,
    ReplaySafeSink,
    get_default_sink,
    make_sink,
    set_default_sink,
)
from happ_integ.logs.transports import JsonTransport, LoggerStream, StreamTransport, format_ms

__all__ = [
    "LEVELS",
    "MASK",
    "MAX_DATA_BYTES",
    "NOTHING",
    "STEP_EVENTS",
    "CaptureSink",
    "ConsoleTransport",
    "HandlerLogger",
    "JsonTransport",
    "Level",
    "LogEvent",
    "LogSink",
    "LoggerStream",
    "MultiSink",
    "NothingType",
    "Redactor",
    "ReplaySafeSink",
    "StreamTransport",
    "SupportsWrite",
    "describe_error",
    "format_ms",
    "get_default_sink",
    "make_sink",
    "now",
    "pretty",
    "redactor",
    "set_default_sink",
    "truncate",
]
