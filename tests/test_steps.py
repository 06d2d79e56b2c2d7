"""`ctx.step.run` as a handler author relies on it: timing, input/output shaping, soft failure."""

from __future__ import annotations

import itertools

import pytest

from happ_integ.logs import CaptureSink, HandlerLogger
from happ_integ.steps import StepRunner, current_step


def runner() -> tuple[StepRunner, CaptureSink]:
    sink = CaptureSink()
    ticks = itertools.count(0, 0.25)  # every clock read is 250 ms later
    return StepRunner(
        HandlerLogger(sink, integration="i", handler="h", trace_id="t"), lambda: next(ticks)
    ), sink


async def test_a_step_returns_the_result_and_logs_input_output_and_duration() -> None:
    step, sink = runner()

    async def search() -> list[int]:
        assert current_step() == "crm.search", "operations inside see the step's name"
        return [1, 2, 3]

    result = await step.run(
        "crm.search", search, input={"phone": "+380"}, transform=lambda r: {"records": len(r)}
    )
    assert result == [1, 2, 3], "transform shapes the log, not the result"
    assert current_step() is None
    [inp] = sink.named("input", "crm.search")
    [out] = sink.named("output", "crm.search")
    assert inp.data == {"phone": "+380"} and out.data == {"records": 3} and out.duration_ms == 250


async def test_skip_output_hides_the_value() -> None:
    step, sink = runner()
    secret = await step.run("creds.get", lambda: {"API_KEY": "value"}, skip_output=True)
    assert secret == {"API_KEY": "value"}
    assert sink.named("output", "creds.get") == [] and len(sink.named("skipped", "creds.get")) == 1
    assert "value" not in repr(list(sink))


async def test_an_optional_step_soft_fails_to_its_default() -> None:
    step, sink = runner()

    async def broken() -> None:
        raise ConnectionError("cache down")

    assert await step.run("cache.get", broken, optional=True) is None
    assert await step.run("config.load", broken, optional=True, default={"retries": 3}) == {"retries": 3}
    errors = sink.named("error", "cache.get")
    assert errors and "cache down" in (errors[0].error or "")


async def test_a_required_step_raises_and_logs_the_error() -> None:
    step, sink = runner()

    def fail() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        await step.run("build", fail)
    assert sink.named("error", "build")
