"""Display-only widgets: records in, renderables out. No I/O here."""
