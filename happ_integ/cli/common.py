"""What every operator command shares: its settings, its one-line errors, its output.

    settings = load_settings()                 # the environment, `.env`, then a running `happ dev`
    integration = load_integration("sofa", need_call_flow=True)
    emit_json({"call_id": "c_1"})              # --json: one document on stdout
    print(table([["c_1", "completed"]], ["CALL ID", "STATUS"]))
    raise CliError("cannot reach the API at …: start it with `happ api` or `make dev`")

A failing command prints one line on stderr, `happ <command>: <what failed>: <the fix>`, and exits
non-zero; nothing else of it goes to stderr (library logs and warnings are silenced).
"""

from __future__ import annotations

import json
import logging
import pkgutil
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError

from happ_integ.settings import Settings

if TYPE_CHECKING:
    from happ_integ.integration import Integration

DEV_SECRETS_FILE = "dev-secrets.json"
DEFAULT_WEB_UI = "http://127.0.0.1:8233"


class CliError(Exception):
    """A failure the operator can fix; the message says how. `code` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class CliSettings(Settings):
    """The service's settings plus what only the CLI reads."""

    api_url: str | None = Field(default=None, validation_alias="HAPP_API_URL")
    web_ui_url: str | None = Field(default=None, validation_alias="HAPP_WEB_UI_URL")

    def api_base(self, override: str | None = None) -> str:
        if override or self.api_url:
            return str(override or self.api_url).rstrip("/")
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::", "") else self.api_host
        return f"http://{host}:{self.api_port}"

    def web_ui(self) -> str:
        return (self.web_ui_url or DEFAULT_WEB_UI).rstrip("/")

    def workflow_link(self, workflow_id: str) -> str:
        return f"{self.web_ui()}/namespaces/{self.temporal_namespace}/workflows/{workflow_id}"


def one_line(message: str) -> str:
    """A message on one line: pydantic's "further information" links dropped, whitespace squashed."""
    message = re.sub(r"For further information visit \S+", "", message)
    return " ".join(message.split())


def quiet() -> None:
    """Library logs and warnings off stderr: a command speaks only through its output and its error."""
    logging.getLogger().addHandler(logging.NullHandler())
    logging.captureWarnings(True)
    warnings.simplefilter("ignore")


def load_settings() -> CliSettings:
    """The environment (and `.env`); unset servers and keys come from a `happ dev` of this folder."""
    try:
        settings = CliSettings()
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error.get("loc", ())) or "a setting"
        message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        raise CliError(f"{where} {message}") from None
    return with_dev_defaults(settings)


def with_dev_defaults(settings: CliSettings) -> CliSettings:
    """What `happ dev` runs with, for each of DATABASE_URL, TEMPORAL_ADDRESS, HAPP_ADMIN_TOKEN,
    HAPP_SECRET_KEY and HAPP_PAYLOAD_KEY left unset, when `HAPP_DATA_DIR/dev-secrets.json` says
    `happ dev` ran here."""
    path = settings.data_dir / DEV_SECRETS_FILE
    try:
        stored = json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        stored = None
    if not isinstance(stored, dict):
        return settings
    from happ_integ.embedded.postgres import DATABASE

    update: dict[str, Any] = {}
    if settings.admin_token is None and stored.get("HAPP_ADMIN_TOKEN"):
        update["admin_token"] = SecretStr(str(stored["HAPP_ADMIN_TOKEN"]))
    if settings.secret_key is None and stored.get("HAPP_SECRET_KEY"):
        update["secret_key"] = SecretStr(str(stored["HAPP_SECRET_KEY"]))
    if (
        settings.payload_key is None
        and stored.get("HAPP_PAYLOAD_KEY")
        and settings.payload_encryption == "on"
    ):
        update["payload_key"] = SecretStr(str(stored["HAPP_PAYLOAD_KEY"]))
    if not settings.database_url:
        update["database_url"] = f"postgresql://postgres@127.0.0.1:{settings.dev_pg_port}/{DATABASE}"
    if not settings.temporal_address:
        update["temporal_address"] = f"127.0.0.1:{settings.dev_temporal_port}"
    if not settings.web_ui_url:
        update["web_ui_url"] = f"http://127.0.0.1:{settings.dev_ui_port}"
    return settings.model_copy(update=update)


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


# Integrations ------------------------------------------------------------------------------------


def integration_names(package: str = "integrations") -> list[str]:
    """The integration packages there are, without importing them."""
    import importlib

    root = importlib.import_module(package)
    return sorted(info.name for info in pkgutil.iter_modules(root.__path__) if info.ispkg)


def unknown_integration(name: str) -> CliError:
    return CliError(f"no integration {name!r}: there are {', '.join(integration_names()) or 'none'}")


def load_integration(name: str, *, need_call_flow: bool = False) -> Integration:
    from happ_integ.integration import discover_integrations

    if name not in integration_names():
        raise unknown_integration(name)
    integration = discover_integrations([name])[name]
    if need_call_flow and integration.call_flow is None:
        raise CliError(
            f"integration {name!r} has no call flow, so it makes no calls "
            f"(those that do: {', '.join(with_call_flow()) or 'none'})"
        )
    return integration


def with_call_flow() -> list[str]:
    """The integrations that make calls; one that does not import is left out of the hint."""
    from happ_integ.integration import discover_integrations

    names = []
    for name in integration_names():
        try:
            if any(i.call_flow is not None for i in discover_integrations([name]).values()):
                names.append(name)
        except Exception:  # another integration's mistake: not this command's concern
            continue
    return names


# Output ------------------------------------------------------------------------------------------


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


def parse_json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CliError(f'{what} is not JSON ({exc}): pass an object, e.g. \'{{"key": "value"}}\'') from None
    if not isinstance(value, dict):
        raise CliError(
            f'{what} must be a JSON object, e.g. \'{{"key": "value"}}\', not {type(value).__name__}'
        )
    return value


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    return "\n".join(lines)


def when(value: str | datetime | None) -> str:
    """An ISO timestamp as local `YYYY-MM-DD HH:MM:SS`; "" for none."""
    if not value:
        return ""
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def plural(count: int, word: str, words: str | None = None) -> str:
    """`plural(1, "call")` → "1 call"; `plural(3, "call")` → "3 calls"."""
    return f"{count} {word if count == 1 else (words or word + 's')}"


def counts_line(counts: Mapping[str, int]) -> str:
    return " · ".join(f"{label} {count}" for label, count in counts.items())
