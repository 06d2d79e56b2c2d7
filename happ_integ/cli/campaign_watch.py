"""Following a campaign's progress, for `happ campaign watch|status|list`, `happ campaign create
--watch` and `happ originate`.

    view = watch(api, "cmp_…", args)    # polls every args.interval s until finished or cancelled
    print(ended_line(view))             # campaign cmp_… finished: 3 recipients · completed 3 · …
    print(describe(api.campaign("cmp_…"), "sofa"))

On a terminal the watch draws rich's live bar and counts in place (on stderr with --json, so
stdout stays one JSON document); on a pipe it prints a `progress: …` line each time the counts
change. A few failed polls in a row are waited out. Ctrl-C stops the watching only, never the
campaign: `watch` raises a CliError (exit 130) that says how to watch or stop it again.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from happ_integ.campaigns.models import CampaignStatus, RecipientStatus
from happ_integ.cli.common import CliError, plural, table, when

if TYPE_CHECKING:
    from rich.console import RenderableType

RECIPIENT_STATUSES = tuple(s.value for s in RecipientStatus)
CLOSED = frozenset({CampaignStatus.FINISHED.value, CampaignStatus.CANCELLED.value})
# A recipient's final statuses, in the order they are shown.
FINAL = ("completed", "exhausted", "failed", "cancelled", "expired", "suppressed")
# The API failing this many polls in a row ends a watch (one failing is waited out).
WATCH_FAILURES = 10


class CampaignSource(Protocol):
    """Where a watch reads the campaign (campaign.CampaignApi, through the gateway)."""

    def campaign(self, campaign_id: str) -> dict[str, Any]: ...


# Showing a campaign --------------------------------------------------------------------------------


def final_count(view: Mapping[str, Any]) -> int:
    counts = view.get("counts") or {}
    return sum(int(counts.get(status, 0)) for status in FINAL)


def status_counts(view: Mapping[str, Any]) -> dict[str, int]:
    """Recipients by status, those with none left out, in the order a recipient goes through them."""
    counts = view.get("counts") or {}
    order = [*RECIPIENT_STATUSES, *sorted(set(counts) - set(RECIPIENT_STATUSES))]
    return {status: int(counts[status]) for status in order if counts.get(status)}


def outcome_counts(view: Mapping[str, Any]) -> dict[str, int]:
    outcomes = view.get("outcomes") or {}
    return {k: int(v) for k, v in sorted(outcomes.items(), key=lambda kv: (-int(kv[1]), kv[0])) if v}


def _pairs(counts: Mapping[str, int]) -> str:
    return " · ".join(f"{label} {count}" for label, count in counts.items()) or "none"


def campaign_state(view: Mapping[str, Any]) -> str:
    status = str(view.get("status"))
    if view.get("cancel_requested") and status not in CLOSED:
        return f"{status}, cancel requested"
    return status


def progress_line(view: Mapping[str, Any]) -> str:
    """One line of a campaign's progress, as a watch prints it where no live bar can be drawn."""
    total = int(view.get("total") or 0)
    line = (
        f"progress: {final_count(view)}/{total} final · {campaign_state(view)} · "
        f"by status: {_pairs(status_counts(view))}"
    )
    outcomes = outcome_counts(view)
    return line + (f" · by outcome: {_pairs(outcomes)}" if outcomes else "")


def progress_view(view: Mapping[str, Any]) -> RenderableType:
    """What the live display draws: the campaign, a bar of final against all recipients, and
    its recipients by status and by outcome."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    total = int(view.get("total") or 0)
    final = final_count(view)
    title = Text.assemble(
        ("campaign ", "bold"),
        (str(view.get("campaign_id")), "bold cyan"),
        f"  {view.get('name', '')}  ",
        (campaign_state(view), "bold"),
    )
    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        ProgressBar(total=max(total, 1), completed=final, width=40),
        Text(f"{final}/{total} final" + (f" ({100 * final // total}%)" if total else "")),
    )

    def counted(header: str, counts: Mapping[str, int]) -> Table:
        block = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 0))
        block.add_column(header)
        block.add_column("COUNT", justify="right")
        for label, count in counts.items():
            block.add_row(label, str(count))
        return block

    columns = Table.grid(padding=(0, 4))
    blocks = [counted("STATUS", status_counts(view))]
    outcomes = outcome_counts(view)
    if outcomes:
        blocks.append(counted("OUTCOME", outcomes))
    columns.add_row(*blocks)
    parts: list[RenderableType] = [title, bar, columns]
    return Group(*parts)


def describe(view: Mapping[str, Any], integration: str) -> str:
    lines = [f"campaign {view['campaign_id']}: {view.get('name', '')} ({integration})"]

    def put(label: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            lines.append(f"  {label:<16}{value}")

    total = int(view.get("total") or 0)
    put("status", campaign_state(view))
    put("recipients", f"{final_count(view)}/{total} final")
    put("created", when(view.get("created_at")))
    put("start at", when(view.get("start_at")))
    put("end at", when(view.get("end_at")))
    put("max concurrency", view.get("max_concurrency"))
    put("started", when(view.get("started_at")))
    put("finished", when(view.get("finished_at")))
    statuses = status_counts(view)
    if statuses:
        lines.append("by status:")
        lines.extend(f"  {line}" for line in table(list(statuses.items()), ["STATUS", "COUNT"]).splitlines())
    outcomes = outcome_counts(view)
    if outcomes:
        lines.append("by outcome:")
        lines.extend(f"  {line}" for line in table(list(outcomes.items()), ["OUTCOME", "COUNT"]).splitlines())
    return "\n".join(lines)


def ended_line(view: Mapping[str, Any]) -> str:
    counts = view.get("counts") or {}
    finals = {status: int(counts.get(status, 0)) for status in FINAL}
    line = (
        f"campaign {view['campaign_id']} {view['status']}: {plural(int(view.get('total') or 0), 'recipient')}"
        f" · {_pairs(finals)}"
    )
    outcomes = outcome_counts(view)
    return line + (f" · by outcome: {_pairs(outcomes)}" if outcomes else "")


# Watching ----------------------------------------------------------------------------------------


class Display(Protocol):
    def update(self, view: Mapping[str, Any]) -> None: ...


class NoDisplay:
    def update(self, view: Mapping[str, Any]) -> None:
        return None


class LineDisplay:
    """A line of counts each time they change: for a pipe or a file."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.last = ""

    def update(self, view: Mapping[str, Any]) -> None:
        line = progress_line(view)
        if line != self.last:
            print(line, file=self.out, flush=True)
            self.last = line


class LiveDisplay:
    """A rich live progress bar and counts, redrawn in place on a terminal."""

    def __init__(self, live: Any) -> None:
        self.live = live

    def update(self, view: Mapping[str, Any]) -> None:
        self.live.update(progress_view(view), refresh=True)


@contextmanager
def display(json_output: bool) -> Iterator[Display]:
    """Live on a terminal (stderr with --json, so stdout stays one document), lines on a pipe."""
    out = sys.stderr if json_output else sys.stdout
    if not out.isatty():
        yield NoDisplay() if json_output else LineDisplay(out)
        return
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    with Live(Text("…"), console=Console(file=out), auto_refresh=False, transient=False) as live:
        yield LiveDisplay(live)


def follow(
    api: CampaignSource,
    campaign_id: str,
    interval: float,
    show: Display,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll the campaign every `interval` seconds, showing each view, until it is finished or
    cancelled; its last view. A few failed polls in a row are waited out."""
    view = api.campaign(campaign_id)
    failures = 0
    while True:
        show.update(view)
        if view.get("status") in CLOSED:
            return view
        sleep(interval)
        try:
            view = api.campaign(campaign_id)
            failures = 0
        except CliError:
            failures += 1
            if failures >= WATCH_FAILURES:
                raise


def watch(api: CampaignSource, campaign_id: str, args: argparse.Namespace) -> dict[str, Any]:
    """Follow the campaign; Ctrl-C ends the watching (exit 130), never the campaign."""
    if args.interval < 0.2:
        raise CliError("--interval must be at least 0.2 seconds")
    last: dict[str, Any] = {}

    class Remember:
        def __init__(self, inner: Display) -> None:
            self.inner = inner

        def update(self, view: Mapping[str, Any]) -> None:
            last.clear()
            last.update(view)
            self.inner.update(view)

    try:
        with display(args.json) as show:
            return follow(api, campaign_id, args.interval, Remember(show))
    except KeyboardInterrupt:
        where = (
            f" ({campaign_state(last)}, {final_count(last)}/{int(last.get('total') or 0)} final)"
            if last
            else ""
        )
        name = args.integration
        raise CliError(
            f"stopped watching (Ctrl-C); campaign {campaign_id} goes on{where}: watch it again with "
            f"`happ campaign watch {name} {campaign_id}`, stop it with "
            f"`happ campaign pause {name} {campaign_id}` or `happ campaign cancel {name} {campaign_id}`",
            code=130,
        ) from None
