"""Command palette entries for mltop's own actions; only those allowed right now are offered."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

# (action, what the palette shows, help line)
COMMANDS = (
    ("filter", "Filter jobs", "type words to narrow the jobs table"),
    ("refresh", "Refresh now", "poll every source now"),
    ("help", "Show keys", "every key mltop understands here"),
    ("cancel_job", "Cancel the selected job", "ask the backend to stop the job under the cursor"),
    ("retry_job", "Retry the selected run", "ask KFP to re-run the failed or cancelled run under the cursor"),
    ("scale_pool", "Scale the selected pool", "change the replicas of the pool under the cursor"),
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
