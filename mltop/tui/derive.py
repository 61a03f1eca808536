"""Derived state off the UI thread: the view (queue order, cost, reasons, idle dollars) is computed
in one worker thread, and the UI thread only applies it.

Why: at 5,000 GPU nodes and 50,000 pods, evaluating the idle-cost engine and ordering the queue
takes tens of milliseconds per source update. On the UI thread, every key pressed during it waits.
In a thread, Python's interpreter switches to the UI thread every few milliseconds, so the cursor
moves while the figures are worked out.

One derivation runs at a time. Requests that arrive meanwhile (a source update, the clock's tick,
an action) collapse into one more derivation, run as soon as the current one is applied: a burst of
updates never queues a backlog, and a slow derivation never piles up behind itself.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from functools import partial

from textual.css.query import NoMatches
from textual.message import Message

from mltop.dashboard import View

log = logging.getLogger(__name__)


class ViewReady(Message):
    """A derived view, from the worker thread; `view` is None when the derivation failed."""

    def __init__(self, view: View | None, cost_changed: bool, error: str | None = None) -> None:
        super().__init__()
        self.view, self.cost_changed, self.error = view, cost_changed, error


def derive(dashboard, now: datetime, with_cost: bool) -> View:
    """The view and everything the panels would otherwise work out on the UI thread."""
    view = dashboard.view(now, with_cost=with_cost)
    view.short_reasons, view.waiting, view.running, view.ray_nodes  # noqa: B018 (cached properties, computed here)
    return view


class Deriving:
    """Mixed into MltopApp: `_draw` asks for a view; `on_view_ready` shows it."""

    _deriving = False  # a derivation is in flight (its ViewReady not yet handled)
    _wanted = False  # another was asked for meanwhile
    _want_cost = False  # ... and it must evaluate the idle-cost engine (a source changed)
    _failed_said = False

    def _draw(self, *, with_cost: bool, soon: bool = False) -> None:
        """Ask for the screen to show the dashboard now (`with_cost`: a source changed); `soon`:
        at the clock's next tick (at most a second away), which asks for a view in any case."""
        self._want_cost = self._want_cost or with_cost
        if soon:
            return
        self._wanted = True
        if not self._deriving:
            self._start_derivation()

    def _start_derivation(self) -> None:
        with_cost, self._want_cost, self._wanted = self._want_cost, False, False
        self._deriving = True
        self._derived_event().clear()
        work = partial(self._derive_in_thread, self.clock(), with_cost)  # type: ignore[attr-defined]
        self.run_worker(work, thread=True, group="derive", description="derive the view",  # type: ignore[attr-defined]
                        exit_on_error=False)

    def _derive_in_thread(self, now: datetime, with_cost: bool) -> None:
        try:
            message = ViewReady(derive(self.dashboard, now, with_cost), with_cost)  # type: ignore[attr-defined]
        except Exception as exc:  # a bug must not freeze the screen: said once, the next request retries
            log.exception("deriving the view failed")
            message = ViewReady(None, with_cost, f"{type(exc).__name__}: {exc}")
        self.post_message(message)  # type: ignore[attr-defined]

    def on_view_ready(self, message: ViewReady) -> None:
        self._deriving = False
        if message.view is not None and self.screen_stack and self.main.is_mounted:  # type: ignore[attr-defined]
            try:
                self._show(message.view, cost_changed=message.cost_changed and self._news(message.view))  # type: ignore
            except NoMatches:  # quitting: a view finished while the panels were being removed
                pass
            else:
                self._shown = message.view
        elif message.error and not self._failed_said:
            self._failed_said = True
            self.say(f"mltop could not work out the screen: {message.error}", severity="error")  # type: ignore
        if message.view is None:
            self._want_cost = self._want_cost or message.cost_changed  # not lost: the next request does it
        if self._wanted:
            self._start_derivation()
        else:
            self._derived_event().set()

    def _news(self, view: View) -> bool:
        """Whether the warnings, nodes and pools differ from those on screen. The Dashboard hands back
        the very same cost report and tuples while the records are the same (a quiet cluster):
        then the three panels need no diff at all, only the jobs and the source lines (ages)."""
        shown: View | None = getattr(self, "_shown", None)
        return shown is None or not (view.cost is shown.cost and view.nodes is shown.nodes
                                     and view.pools is shown.pools)

    def _derived_event(self) -> asyncio.Event:
        if not hasattr(self, "_derived"):
            self._derived = asyncio.Event()
            self._derived.set()
        return self._derived

    async def derived(self) -> None:
        """Wait until every view asked for so far is on the screen (tests, `refresh_now`)."""
        await self._derived_event().wait()
