"""Messages from the refresh loops to the UI thread."""

from __future__ import annotations

from textual.message import Message

from mltop.refresh import SourceUpdate


class SourceUpdated(Message):
    """One poll's whole result for one source; a newer one for the same source replaces it."""

    def __init__(self, update: SourceUpdate) -> None:
        super().__init__()
        self.update = update

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SourceUpdated) and message.update.key == self.update.key
