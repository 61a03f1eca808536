"""Backend adapters: I/O only, each returns records from mltop.model. No Textual here."""
