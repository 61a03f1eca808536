"""`y`: the selected object as the backend sent it. (Being built: see issue 11.)"""

from __future__ import annotations


class RawActions:
    """Mixed into MltopApp."""

    def action_show_raw(self) -> None:
        self.say("the raw view is not built yet", severity="warning")  # type: ignore[attr-defined]
