"""Intake unit tests (a package, so that its test modules need no prefix)."""
