"""Loopback HTTP servers that speak each shop platform's published API, for tests."""
