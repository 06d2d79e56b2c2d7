"""What a user sees from the log transports: the console tree, JSON lines, masked secrets."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import BaseModel, SecretStr
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from happ_integ.logs import (
    MASK,
    NOTHING,
    CaptureSink,
    ConsoleTransport,
    HandlerLogger,
    JsonTransport,
    LogEvent,
    LoggerStream,
    LogSink,
    MultiSink,
    Redactor,
    ReplaySafeSink,
    get_default_sink,
    make_sink,
    set_default_sink,
)

T0 = datetime(2026, 1, 21, 14, 39, 12, 345000, tzinfo=UTC)


def ticking(step_ms: float = 0) -> Callable[[], datetime]:
    """A fixed clock that advances `step_ms` per reading."""
    state = {"n": 0}

    def clock() -> datetime:
        state["n"] += 1
        return T0 + timedelta(milliseconds=step_ms * (state["n"] - 1))

    return clock


def logger(
    sink: LogSink, trace: str = "abc123", handler: str = "agent-init", step_ms: float = 0
) -> HandlerLogger:
    return HandlerLogger(sink, integration="sofa", handler=handler, trace_id=trace, clock=ticking(step_ms))


def console(redactor: Redactor | None = None) -> tuple[ConsoleTransport, io.StringIO]:
    out = io.StringIO()
    return ConsoleTransport(out, color=False, tz=UTC, redactor=redactor or Redactor()), out


def jsonl(redactor: Redactor | None = None) -> tuple[JsonTransport, io.StringIO]:
    out = io.StringIO()
    return JsonTransport(out, redactor=redactor or Redactor()), out


def run_three_steps(log: HandlerLogger) -> None:
    log.handler_start({"phone": "+380..."})
    log.step_end("cache.get", 2, input={"cache": "sofa:context:+380..."}, output=None)
    log.step_end("creds.get", 1, skip_output=True)
    log.step_end("crm.search", 145, input={"phone": "+380..."}, error=TimeoutError("CRM did not answer"))
    log.handler_end(150, error=TimeoutError("CRM did not answer"))


# --- JSON ----------------------------------------------------------------------------------


def test_json_lines_carry_trace_span_event_and_duration() -> None:
    transport, out = jsonl()
    run_three_steps(logger(transport))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["event"], r.get("span")) for r in lines] == [
        ("handler:start", None),
        ("input", "cache.get"),
        ("output", "cache.get"),
        ("skipped", "creds.get"),
        ("input", "crm.search"),
        ("error", "crm.search"),
        ("handler:end", None),
    ]
    assert all(r["traceId"] == "abc123" and r["integration"] == "sofa" for r in lines)
    assert all(r["handler"] == "agent-init" and r["ts"] == "2026-01-21T14:39:12.345Z" for r in lines)
    start, _, output, skipped, _, error, end = lines
    assert start["level"] == "info" and start["data"] == {"phone": "+380..."}
    assert output == {**output, "level": "debug", "duration_ms": 2, "data": None}  # null output is kept
    assert "data" not in skipped and skipped["duration_ms"] == 1
    assert error["level"] == "error" and error["error"] == "TimeoutError: CRM did not answer"
    assert end["level"] == "error" and end["duration_ms"] == 150 and "data" not in end
    assert "span" not in start and "message" not in start  # None keys are omitted
    assert list(output) == [
        "level",
        "ts",
        "traceId",
        "integration",
        "handler",
        "span",
        "event",
        "duration_ms",
        "data",
    ]


def test_json_renders_values_that_are_not_json_native() -> None:
    class Contact(BaseModel):
        name: str
        token: SecretStr

    @dataclasses.dataclass
    class Point:
        x: int
        when: datetime

    loop: dict[str, object] = {"name": "loop"}
    loop["self"] = loop
    transport, out = jsonl()
    logger(transport).info(
        "odd values",
        {
            "when": T0,
            "model": Contact(name="Ivan", token=SecretStr("t0p-secret")),
            "audio": b"\x00" * 10,
            "exc": ValueError("bad phone"),
            "tags": {"a"},
            "price": Decimal("9.90"),
            "id": uuid.UUID(int=1),
            "point": Point(1, T0),
            "nan": float("nan"),
            "loop": loop,
            7: "int key",
            "obj": object(),
        },
    )
    data = json.loads(out.getvalue())["data"]
    assert data["when"] == "2026-01-21T14:39:12.345000+00:00"
    assert data["model"] == {"name": "Ivan", "token": MASK}
    assert data["audio"] == "<10 bytes>"
    assert data["exc"] == "ValueError: bad phone"
    assert data["tags"] == ["a"] and data["price"] == "9.90" and data["id"] == str(uuid.UUID(int=1))
    assert data["point"] == {"x": 1, "when": "2026-01-21T14:39:12.345000+00:00"}
    assert data["nan"] == "nan" and data["loop"] == {"name": "loop", "self": "<cycle>"}
    assert data["7"] == "int key" and data["obj"].startswith("<object object")


def test_huge_data_is_truncated_with_a_marker() -> None:
    transport, out = jsonl()
    cons, cout = console()
    log = logger(MultiSink(transport, cons))
    log.handler_start()
    log.step_end("crm.list", 5, output={"rows": ["x" * 100] * 1000})
    log.handler_end(6)
    line = next(json.loads(s) for s in out.getvalue().splitlines() if '"output"' in s)
    assert isinstance(line["data"], str) and line["data"].endswith("…[truncated: 103010 bytes]")
    assert len(json.dumps(line)) < 4096 + 500
    tree = cout.getvalue()
    assert "…[truncated: 103010 bytes]" in tree and len(tree) < 4096 + 1000


def test_json_via_logging_logger(caplog: pytest.LogCaptureFixture) -> None:
    transport = JsonTransport(LoggerStream(logging.getLogger("happ.test")), redactor=Redactor())
    with caplog.at_level(logging.INFO, logger="happ.test"):
        logger(transport).info("through logging", {"n": 1})
    assert [json.loads(r.getMessage())["data"] for r in caplog.records] == [{"n": 1}]


# --- console -------------------------------------------------------------------------------


def test_console_tree_of_three_steps() -> None:
    transport, out = console()
    run_three_steps(logger(transport, step_ms=10))
    assert out.getvalue().splitlines() == [
        "┌─ sofa/agent-init [trace-abc123] ──────────────────────────────",
        '│ 14:39:12.345 [INFO] handler:start { phone: "+380..." }',
        "│",
        "│ ├─ cache.get (2ms)",
        '│ │  └─ input: { cache: "sofa:context:+380..." }',
        "│ │  └─ output: null",
        "│",
        "│ ├─ creds.get (1ms) [skipOutput]",
        "│",
        "│ ├─ crm.search (145ms) [ERROR]",
        '│ │  └─ input: { phone: "+380..." }',
        "│ │  └─ error: TimeoutError: CRM did not answer",
        "│",
        "│ 14:39:12.405 [ERROR] handler:end (150ms) error: TimeoutError: CRM did not answer",
        "└──────────────────────────────────────────────────────────────",
    ]


def test_console_buffers_until_the_run_ends() -> None:
    transport, out = console()
    log = logger(transport)
    log.handler_start({"phone": "+380..."})
    log.step_end("cache.get", 2, input={"cache": "k"}, output={"hit": False})
    log.info("looking up")
    assert out.getvalue() == ""
    log.handler_end(3)
    assert out.getvalue().count("┌─") == 1 and out.getvalue().rstrip().endswith("─" * 62)


def test_two_interleaved_runs_print_two_intact_trees() -> None:
    transport, out = console()
    a, b = logger(transport, trace="aaa", handler="h-a"), logger(transport, trace="bbb", handler="h-b")
    a.handler_start({"who": "a"})
    b.handler_start({"who": "b"})
    a.step_end("step.one", 1, input={"who": "a"}, output={"who": "a"})
    b.step_end("step.one", 1, input={"who": "b"}, output={"who": "b"})
    b.info("b says hi")
    a.step_end("step.two", 2, input={"who": "a"}, skip_output=True)
    b.handler_end(5)
    a.handler_end(6)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("┌─ sofa/h-b [trace-bbb] ")
    split = lines.index("└" + "─" * 62) + 1
    tree_b, tree_a = lines[:split], lines[split:]
    assert tree_a[0].startswith("┌─ sofa/h-a [trace-aaa] ") and tree_a[-1] == "└" + "─" * 62
    assert all('"a"' not in line for line in tree_b) and all('"b"' not in line for line in tree_a)
    assert [line for line in tree_a if "├─" in line] == [
        "│ ├─ step.one (1ms)",
        "│ ├─ step.two (2ms) [skipOutput]",
    ]
    assert "│ 14:39:12.345 [INFO] b says hi" in tree_b


def test_error_event_flushes_the_run_so_far() -> None:
    transport, out = console()
    a, b = logger(transport, trace="aaa"), logger(transport, trace="bbb")
    a.handler_start()
    a.step_end("db.insert", 4, input={"id": 1}, error="unique violation")
    after_error = out.getvalue().splitlines()
    assert after_error[0].startswith("┌─ sofa/agent-init [trace-aaa]")
    assert after_error[-1] == "│ │  └─ error: unique violation"
    b.info("someone else")  # another writer in between
    a.step_end("db.select", 1, output=[])
    a.handler_end(7)
    rest = out.getvalue().splitlines()[len(after_error) :]
    assert rest[0].startswith("14:39:12.345 [INFO] sofa/agent-init [trace-bbb] someone else")
    assert rest[1].startswith("┌─ sofa/agent-init [trace-aaa] (continued) ")
    assert rest[-1] == "└" + "─" * 62


def test_lines_outside_a_run_print_immediately() -> None:
    transport, out = console()
    log = logger(transport)
    log.warning("no run yet", {"n": 1})
    assert out.getvalue() == "14:39:12.345 [WARNING] sofa/agent-init [trace-abc123] no run yet { n: 1 }\n"
    log.step_end("cache.get", 2, input={"cache": "k"}, output=None)
    assert out.getvalue().splitlines()[1:] == [
        "14:39:12.345 [DEBUG] sofa/agent-init [trace-abc123] cache.get (2ms)",
        '   └─ input: { cache: "k" }',
        "   └─ output: null",
    ]
    HandlerLogger(transport, clock=ticking()).info("bare")
    assert out.getvalue().splitlines()[-1] == "14:39:12.345 [INFO] bare"


def test_open_runs_are_printed_on_close() -> None:
    transport, out = console()
    log = logger(transport)
    log.handler_start()
    log.step_end("cache.get", 1, output=1)
    transport.close()  # what the atexit hook does
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("┌─") and "│ ├─ cache.get (1ms)" in lines and lines[-2] == "│ (run still open)"


def test_color_only_when_asked() -> None:
    out = io.StringIO()
    logger(ConsoleTransport(out, color=True, tz=UTC)).error("boom", ValueError("x"))
    assert "\x1b[31m" in out.getvalue()
    out = io.StringIO()
    logger(ConsoleTransport(out, tz=UTC)).error("boom", ValueError("x"))  # StringIO is not a TTY
    assert "\x1b[" not in out.getvalue() and out.getvalue().endswith("boom error: ValueError: x\n")


# --- redaction -----------------------------------------------------------------------------


def test_secret_looking_keys_are_masked_at_any_depth() -> None:
    r = Redactor()
    masked = r.redact(
        {
            "password": "p",
            "Authorization": "Bearer abc",
            "NETHUNT_API_KEY": "k",
            "apiKey": "k",
            "x-api-key": "k",
            "key": "context:+380",
            "cache_key": "crm:record:1",
            "private_key": "k",
            "client_secret": "s",
            "refreshToken": "t",
            "nested": [{"deep": {"secret": {"whole": "subtree"}}}],
            "prompt_tokens": 12,
            "monkey": "banana",
            "keyField": "id",
            "phone": "+380",
        }
    )
    assert masked == {
        "password": MASK,
        "Authorization": MASK,
        "NETHUNT_API_KEY": MASK,
        "apiKey": MASK,
        "x-api-key": MASK,
        "key": "context:+380",
        "cache_key": "crm:record:1",
        "private_key": MASK,
        "client_secret": MASK,
        "refreshToken": MASK,
        "nested": [{"deep": {"secret": MASK}}],
        "prompt_tokens": 12,
        "monkey": "banana",
        "keyField": "id",
        "phone": "+380",
    }
    assert r.scrub("header Authorization: Bearer abcdefghijkl") == "header Authorization: Bearer ***"


@pytest.mark.parametrize("secret", ["sk-live-4f9a8b7c", 'quo"te\\secret-ü'])
def test_registered_secret_never_appears_in_either_transport(secret: str) -> None:
    r = Redactor()
    r.add_secret(secret)
    r.add_secret(SecretStr("another-one"))
    r.add_secret("abc")  # too short to register: would mask too much
    cons, cout = console(r)
    js, jout = jsonl(r)
    log = HandlerLogger(
        MultiSink(cons, js), integration="sofa", handler=secret, trace_id=secret, clock=ticking()
    )
    log.handler_start({"note": f"x{secret}y", "list": [secret, {"k2": secret}], secret: "as a key"})
    log.step_end(f"crm.{secret}", 1, input={"q": secret}, output=f"got {secret}")
    log.info(f"message with {secret}", {"model_ish": ValueError(secret)})
    log.error("failed", RuntimeError(f"auth {secret} rejected"))
    log.step_end("s", 1, error=f"err {secret}")
    log.info("abc is too short to be a secret")
    log.handler_end(3, error=secret)
    for text in (cout.getvalue(), jout.getvalue()):
        assert secret not in text and json.dumps(secret)[1:-1] not in text
        assert MASK in text and "abc" in text
    for line in jout.getvalue().splitlines():
        json.loads(line)  # still valid JSON after masking


def test_default_redactor_is_shared_by_transports() -> None:
    from happ_integ.logs import redactor

    redactor.add_secret("process-wide-secret-1")
    out = io.StringIO()
    logger(JsonTransport(out)).info("has process-wide-secret-1")
    assert "process-wide-secret-1" not in out.getvalue()


# --- sinks ---------------------------------------------------------------------------------


def test_capture_sink_and_nothing_sentinel() -> None:
    cap = CaptureSink()
    log = logger(cap)
    log.step_end("a", 1, output=None)
    log.step_end("b", 1, input=None, output=NOTHING)
    log.info("no data")
    assert [e.event for e in cap] == ["output", "input", "output", "no data"]
    assert cap.named("input", span="b")[0].data is None  # None was given: logged as null
    assert cap.named("no data")[0].data is NOTHING
    assert isinstance(cap.events[0], LogEvent) and cap.events[0].timestamp == T0


def test_replay_safe_sink_passes_events_outside_workflows() -> None:
    cap = CaptureSink()
    logger(ReplaySafeSink(cap)).info("hello")
    assert [e.event for e in cap] == ["hello"]


def test_make_sink_picks_the_transport() -> None:
    json_sink = make_sink("json", stream=io.StringIO())
    assert isinstance(json_sink, ReplaySafeSink) and isinstance(json_sink.inner, JsonTransport)
    assert isinstance(make_sink(" Console ", stream=io.StringIO(), replay_safe=False), ConsoleTransport)
    with pytest.raises(ValueError, match="console"):
        make_sink("xml")


def test_a_failing_sink_never_breaks_the_handler(capsys: pytest.CaptureFixture[str]) -> None:
    def broken(event: LogEvent) -> None:
        raise OSError("disk full")

    logger(broken).info("still fine")
    assert "log sink failed: OSError: disk full" in capsys.readouterr().err


# --- Temporal ------------------------------------------------------------------------------


@workflow.defn(sandboxed=True)
class LoggingWorkflow:
    @workflow.run
    async def run(self) -> str:
        log = HandlerLogger(integration="sofa", handler="wf", trace_id=workflow.info().workflow_id)
        log.handler_start({"n": 1})
        await workflow.sleep(timedelta(hours=1))
        log.step_end("wait", 3_600_000.0, output="woke")
        log.handler_end(3_600_000.0)
        return "done"


@pytest.fixture
def default_sink() -> Iterator[CaptureSink]:
    cap = CaptureSink()
    previous = get_default_sink()
    set_default_sink(ReplaySafeSink(cap))
    yield cap
    set_default_sink(previous)


async def test_a_workflow_logs_each_event_once_despite_replays(
    time_skipping_env: WorkflowEnvironment, task_queue: str, default_sink: CaptureSink
) -> None:
    runner = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("happ_integ.logs")
    )
    client = time_skipping_env.client
    # no workflow cache: every workflow task replays the history from the start
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[LoggingWorkflow],
        workflow_runner=runner,
        max_cached_workflows=0,
    ):
        handle = await client.start_workflow(
            LoggingWorkflow.run, id=f"logs-{task_queue}", task_queue=task_queue
        )
        assert await handle.result() == "done"
    assert [e.event for e in default_sink] == ["handler:start", "output", "handler:end"]
    start, output, _ = default_sink.events
    assert start.trace_id == f"logs-{task_queue}"
    assert output.timestamp - start.timestamp >= timedelta(hours=1)  # workflow.now(), time-skipped

    history: WorkflowHistory = await handle.fetch_history()
    default_sink.clear()
    await Replayer(workflows=[LoggingWorkflow], workflow_runner=runner).replay_workflow(history)
    assert default_sink.events == []
