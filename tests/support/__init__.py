"""Helpers for tests in every folder (import as `support.<module>`): what more than one
test package needs lives here, not in a conftest another package imports."""
