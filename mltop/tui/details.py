"""`enter` on a job: everything the backend says about it, and the tail of its log.

The screen stays live: each time the dashboard draws a new view (`on_view`), it reads its job
again by key and redraws the state, the wait or run time, the measured utilization, the nodes it
runs on, its cost so far and why it waits; the log tail and the scroll position stay as they are.
A job that no longer appears says so, and keeps showing what was last known.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from mltop import format as fmt
from mltop.actions import HasJobDetails
from mltop.dashboard import View
from mltop.errors import SourceError
from mltop.model import Job, JobState
from mltop.safe_text import inert
from mltop.widgets.facts import facts_grid


def facts(job: Job, now: datetime, waiting_reason: str | None = None,
          live: Sequence[tuple[str, str]] = ()) -> Table:
    waited = job.queued_seconds(now)
    ran = job.run_seconds(now)
    rows = [
        ("source", f"{job.source}/{job.cluster}"),
        ("id", job.id),
        ("name", job.name),
        ("state", f"{job.state.value}   ({job.source} says {job.native_state})"),
        ("type", job.kind or "-"),
        ("GPUs asked", fmt.gpus(job.gpus)),
        ("CPUs asked", fmt.gpus(job.cpus)),
        ("owner", job.owner or "-"),
        ("submitted", fmt.timestamp(job.submitted_at)),
        ("waiting for", fmt.long_duration(waited)) if waited is not None else ("started", fmt.timestamp(job.started_at)),
        ("finished", fmt.timestamp(job.finished_at)),
        # Here the entrypoint keeps its lines (the jobs table folds them into one); each stays inert.
        ("entrypoint", Text(inert(job.entrypoint or "-", multiline=True))),
    ]
    if job.namespace:
        rows.insert(2, ("namespace", job.namespace))
    if waiting_reason and job.state is JobState.PENDING:
        rows.insert(rows.index(("waiting for", fmt.long_duration(waited))) + 1, ("why it waits", waiting_reason))
    elif waiting_reason:  # a KFP run whose step's pod waits: KFP itself says RUNNING
        rows.insert(rows.index(("type", job.kind or "-")), ("why it waits", waiting_reason))
    if ran is not None:
        rows.insert(rows.index(("finished", fmt.timestamp(job.finished_at))) + 1,
                    ("ran for" if job.finished_at else "running for", fmt.short_duration(ran)))
    entrypoint = rows.pop()  # last: the live facts go before it, as it may run to many lines
    rows += [(label, value) for label, value in (("RayCluster", job.ray_cluster), ("submission id", job.submission_id),
                                                 (f"{job.source} reason", job.reason)) if value]
    rows += [*live, entrypoint]
    if job.stop_requested_at is not None:
        rows.append(("stop", f"requested {fmt.long_duration((now - job.stop_requested_at).total_seconds())} ago; "
                             f"not yet confirmed by {job.source}"))
    return facts_grid(rows)


def live_facts(job: Job, view: View) -> list[tuple[str, str]]:
    """What only the dashboard knows about a job: its measured utilization, its nodes, its cost so far."""
    return [("GPU utilization", utilization_text(job)), ("runs on", nodes_text(job, view)),
            ("GPU cost so far", cost_text(job, view))]


def utilization_text(job: Job) -> str:
    if job.gpu_utilization is not None:
        return f"{job.gpu_utilization:.0f}% (measured, over the GPUs it holds)"
    if job.state is JobState.RUNNING and job.gpus:
        return "not measured (no GPU telemetry for it: logical GPUs, or no exporter)"
    return "-"


def nodes_text(job: Job, view: View) -> str:
    if not job.node_keys:
        return "not placed yet" if job.state is JobState.PENDING else f"{job.source} does not say"
    by_key = {n.key: n for n in view.nodes}
    names = []
    for key in job.node_keys:
        node = by_key.get(key)
        if node is None:
            names.append(f"node {fmt.clip(key.rsplit('/', 1)[-1], 16)} (not a GPU node, or gone)")
        else:
            names.append(f"{node.name} ({node.address})" if node.address else node.name)
    where = "  (its driver's node)" if job.source == "ray" else ""
    return ", ".join(names) + where


def cost_text(job: Job, view: View) -> str:
    """GPUs x node price per GPU x run time; "unknown" and why, never a guess."""
    spent = view.job_cost_so_far(job)
    currency = view.cost.currency if view.cost else "$"
    if spent is None:
        if job.gpus is None:
            why = f"{job.source} does not say how many GPUs it holds"
        elif not job.node_keys:
            why = "the node it runs on is not known"
        else:
            why = "no price is known for its node"
        return f"unknown ({why})"
    if job.gpus == 0:  # known to be none; unknown (None) is not "none"
        return f"{currency}0.00 (it asks for no GPUs)"
    if job.started_at is None:
        return f"{currency}0.00 (not started)"
    node = next((n for n in view.nodes if n.key == job.node_keys[0]), None)
    price = view.cost.node_price(job.node_keys[0]) if view.cost else None
    rate = (price.per_hour or 0.0) / node.gpus_total if node and price and node.gpus_total else None
    basis = f"{fmt.gpus(job.gpus)} GPUs x {currency}{rate:,.2f}/GPU-hour x {fmt.short_duration(job.run_seconds(view.now))}" \
        if rate is not None else ""
    if job.source == "ray":
        basis += ", from submission: Ray does not record when it started"
    return f"{currency}{spent:,.2f}" + (f"  ({basis})" if basis else "")


def forward_view(screens: Iterable[Screen], view: View) -> None:
    """Hand the newest view to every open job details screen (the app calls this when it draws)."""
    for screen in screens:
        if isinstance(screen, JobDetailsScreen):
            screen.on_view(view)


class JobDetailsScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self, job: Job, source: HasJobDetails | None, *, clock: Callable[[], datetime],
                 waiting_reason: str | None = None) -> None:
        super().__init__()
        self.job = job
        self.source = source
        self.clock = clock
        self.waiting_reason = waiting_reason  # the dashboard's words for why it waits
        self.live: list[tuple[str, str]] = []  # live_facts of the newest view
        self.chain: list[str] = []  # its identity chain, as tree lines (mltop/chain.py), when it is in one
        self.gone_since: datetime | None = None  # when the newest views stopped listing it
        self.views_seen = 0

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="details"):
            yield Static("", id="gone")
            yield Static(facts(self.job, self.clock(), self.waiting_reason), id="facts")
            yield Static(message_text(self.job), id="message")
            yield Static("", id="chain")
            loading = "loading…" if self.source is not None else ""
            yield Static(Text(loading, style="dim"), id="log")
        yield Footer()

    def on_mount(self) -> None:
        # Screen.sub_title keeps a plain str (never markup); a Text border title is taken as-is,
        # where a str one would be parsed as markup.
        self.sub_title = inert(f"{self.job.cluster}/{self.job.id}")
        self.query_one("#details").border_title = Text(inert(f"Job {self.job.cluster}/{self.job.id}"))
        self.query_one("#gone").display = False
        main = self.app.screen_stack[0] if self.app.screen_stack else None
        view = getattr(main, "view", None)
        if isinstance(view, View):  # the view it was opened from: utilization, nodes and cost at once
            self.on_view(view)
        if self.source is not None:  # a pending pod has nothing more to fetch than what is shown
            self.load()

    def on_view(self, view: View) -> None:
        """The dashboard drew a newer view: read this job again by key and redraw what changed."""
        self.views_seen += 1
        current = next((j for j in view.jobs if j.key == self.job.key), None) or view.chains.members.get(self.job.key)
        if current is None:
            self.gone_since = self.gone_since or view.now
        else:
            self.gone_since = None
            self.job = current
            self.waiting_reason = view.waiting_reason(current)
        self.live = live_facts(self.job, view)
        self.chain = view.chain_tree(self.job.key)  # the whole chain it is in, from its top; [] for none
        self._redraw(view.now)

    def _redraw(self, now: datetime) -> None:
        gone = self.query_one("#gone", Static)
        gone.display = self.gone_since is not None
        if self.gone_since is not None:
            gone.update(Text(inert(
                f"gone from the queue: {self.job.source}/{self.job.cluster} no longer lists this job (for "
                f"{fmt.long_duration((now - self.gone_since).total_seconds())}); below is what was last known"),
                style="bold yellow"))
        self.query_one("#facts", Static).update(facts(self.job, now, self.waiting_reason, self.live))
        self.query_one("#message", Static).update(message_text(self.job))
        self.query_one("#chain", Static).update(chain_text(self.chain))

    def action_reload(self) -> None:
        if self.source is not None:
            self.load()

    @work(exclusive=True, group="details", description="load job details", exit_on_error=False)
    async def load(self) -> None:
        log = self.query_one("#log", Static)
        try:
            detail = await self.source.job_detail(self.job.id)
        except SourceError as exc:
            log.update(Text(inert(f"could not load details: {exc}"), style="red"))
            return
        if not self.views_seen:  # no live view: the backend's answer is the newest word on the job
            job = detail.job
            if self.job.stop_requested_at is not None and not job.state.is_terminal:
                job = replace(job, stop_requested_at=self.job.stop_requested_at)
            self.job = replace(job, gpu_utilization=self.job.gpu_utilization)
            self._redraw(self.clock())
        log.update(sections_text(detail.sections))


def chain_text(lines: Sequence[str]) -> Text:
    """The layers under this row (a KFP run's RayJob, its RayCluster, its Ray job), each inert."""
    if not lines:
        return Text("")
    body = Text("chain (one item: each layer and its own state):\n", style="bold")
    body.append("\n".join(inert(line) for line in lines) + "\n")
    return body


def message_text(job: Job) -> Text:
    return Text(inert(job.message or "", multiline=True), style="italic")


def sections_text(sections: Iterable[tuple[str, str]]) -> Text:
    """Log tails and state histories: several lines, each inert (a log line is anyone's text)."""
    body = Text()
    for title, text in sections:
        body.append(f"{inert(title)}:\n", style="bold")
        body.append(inert(text.rstrip("\n"), multiline=True) + "\n\n")
    return body
