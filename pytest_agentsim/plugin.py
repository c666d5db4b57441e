"""pytest entry point (placeholder, filled in by the foundation work)."""
