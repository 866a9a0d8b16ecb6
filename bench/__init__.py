"""Benchmarks of the sidecar against a fast local fake upstream: `python -m bench`."""
