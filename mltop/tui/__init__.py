"""The Textual application: screens, messages, key bindings, styles."""
