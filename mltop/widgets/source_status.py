"""One line per source: connected or not, how old its data is, its last error. Display only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from mltop import format as fmt
from mltop.dashboard import SourceLine
from mltop.model import RayClusterState, SourceHealth
from mltop.safe_text import inert
from mltop.widgets.steady import update_if_changed


def source_line(
    health: SourceHealth, cluster: RayClusterState | None, now: datetime, stale_after: float, extra: str = ""
) -> Text:
    line = Text()
    age = health.age_seconds(now)
    label = inert(f"{health.kind}/{health.name}")  # names come from config files and backends
    if health.last_attempt is None:
        line.append(f"{fmt.CONNECTING} ", style="dim")
        line.append(label, style="bold")
        line.append(f"  connecting{fmt.ELLIPSIS}", style="dim")
        return line
    if health.ok:
        # A source that polls slower than the refresh (a large Ray job list) is stale only when
        # its own pace has been missed, like any other source.
        if health.poll_every:
            stale_after = max(stale_after, 3 * health.poll_every)
        stale = age is not None and age > stale_after
        line.append(f"{fmt.LIVE} ", style="yellow" if stale else "green")
        line.append(label, style="bold")
        line.append(f"  {fmt.short_duration(age)} ago" if stale else "  live", style="yellow" if stale else "green")
    else:
        line.append(f"{fmt.FAILED} ", style="bold red")
        line.append(label, style="bold")
        data_age = f"data {fmt.short_duration(age)} old" if age is not None else "no data yet"
        line.append(f"  {data_age}: ", style="red")
        line.append(inert(health.error or "failed"), style="red")
    if health.ok and health.skipped > 0:
        line.append(f"  {fmt.skipped_note(health.skipped, health.skip_reason)}", style="yellow")
    if health.ok and extra:
        line.append(f"  {inert(extra)}")
    if health.ok and cluster is not None:
        used = fmt.gpus(cluster.gpus_used)
        line.append(f"  GPUs {used}/{fmt.gpus(cluster.gpus_total)} used")
        if cluster.gpus_waiting:
            line.append(f", {fmt.gpus(cluster.gpus_waiting)} wanted by waiting work", style="yellow")
    if health.ok and health.note:  # last: on a narrow terminal the GPUs matter more
        line.append(f"  {inert(health.note)}", style="dim")
    return line


def extra_of(line: SourceLine) -> str:
    """What a source with GPU nodes adds to its line (a Kubernetes cluster, today)."""
    if not line.nodes:
        return ""
    return (f"{line.nodes} GPU nodes, {fmt.gpus(line.gpus_allocated)}/{fmt.gpus(line.gpus_allocatable)} GPUs "
            f"allocated, {line.waiting} {line.job_noun}s wait for GPUs")


class SourceStatus(Static):
    """The per-source status lines under the jobs panel."""

    def sync(self, lines: Sequence[SourceLine], now: datetime, stale_after: float) -> None:
        text = Text("\n").join(source_line(line.health, line.cluster, now, stale_after, extra_of(line))
                               for line in lines)
        text.no_wrap = True
        text.overflow = "ellipsis" if fmt.ELLIPSIS == "…" else "crop"  # Rich draws "…": not on an ASCII terminal
        update_if_changed(self, text)
