"""Command palette entries for mltop's own actions; only those allowed right now are offered."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

# (action, what the palette shows, help line)
COMMANDS = (
    ("filter", "Filter this panel", "a regex, field:value, gpus>4, !negation: narrows the focused panel"),
    ("refresh", "Refresh now", "poll every source now"),
    ("help", "Show keys", "every key mltop understands here"),
    ("cancel_job", "Cancel the selected job", "ask the backend to stop the job under the cursor"),
    ("retry_job", "Retry the selected run", "ask KFP to re-run the failed or cancelled run under the cursor"),
    ("scale_pool", "Scale the selected pool", "change the replicas of the pool under the cursor"),
    ("workload_active", "Stop or resume the Kueue workload", "spec.active of the selected job's Kueue Workload"),
    ("toggle_mark", "Mark the selected job", "mark several jobs, then cancel or retry them with one confirmation"),
    ("show_log", "Follow the log", "the selected job's or pod's log, as it is written"),
    ("show_raw", "Show the raw object", "the selected object as the backend sent it, secrets redacted"),
    ("zoom", "Zoom the panel", "the focused panel fills the screen"),
    ("incident_snapshot", "Write an incident snapshot", "queue, reasons, idle GPUs, warnings and actions as Markdown"),
    ("command", "Command line", ":jobs :nodes :pools :warnings :queues :teams :cluster/:ctx/:ns NAME :audit :q"),
)


class MltopCommands(Provider):
    def _allowed(self) -> list[tuple[str, str, str]]:
        app = self.app
        return [c for c in COMMANDS if app.check_action(c[0], ()) is True]

    async def discover(self) -> Hits:
        for action, title, help_text in self._allowed():
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for action, title, help_text in self._allowed():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self.app.run_action, action), help=help_text)
