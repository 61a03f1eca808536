"""`l`: follow the selected job's or pod's log. (Being built: see issue 11.)"""

from __future__ import annotations


class LogActions:
    """Mixed into MltopApp."""

    def action_show_log(self) -> None:
        self.say("logs are not built yet", severity="warning")  # type: ignore[attr-defined]
