"""Log events, levels, the NOTHING sentinel and the sink protocol."""

from __future__ import annotations

import dataclasses
import enum
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol, runtime_checkable

from temporalio import workflow

Level = Literal["debug", "info", "warning", "error"]
LEVELS: Final[dict[str, int]] = {"debug": 10, "info": 20, "warning": 30, "error": 40}
STEP_EVENTS: Final = frozenset({"input", "output", "skipped", "error"})
MAX_DATA_BYTES: Final = 4096


class _Nothing(enum.Enum):
    NOTHING = "NOTHING"

    def __repr__(self) -> str:
        return "NOTHING"

    def __bool__(self) -> bool:
        return False


NOTHING: Final = _Nothing.NOTHING
"""'No value given' — distinct from None, which is logged as null."""
NothingType = _Nothing
"""The type of NOTHING, for annotations: `input: Any | NothingType = NOTHING`."""


def now() -> datetime:
    """Aware UTC now; `workflow.now()` inside a workflow (deterministic)."""
    return workflow.now() if workflow.in_workflow() else datetime.now(UTC)


def describe_error(error: BaseException | str | None) -> str | None:
    if error is None or isinstance(error, str):
        return error
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@dataclasses.dataclass(frozen=True, slots=True)
class LogEvent:
    level: Level
    event: str
    trace_id: str | None = None
    integration: str | None = None
    handler: str | None = None
    span: str | None = None
    duration_ms: float | None = None
    data: Any = NOTHING
    message: str | None = None
    timestamp: datetime = dataclasses.field(default_factory=now)
    error: str | None = None


@runtime_checkable
class LogSink(Protocol):
    def __call__(self, event: LogEvent, /) -> None: ...


class SupportsWrite(Protocol):
    def write(self, text: str, /) -> object: ...
