"""Benchmarks run by `make bench`: each prints a table; timing goals live here, not in tests."""
