"""Benchmarks of mlc against its peers: ``python -m benchmarks.run`` (see README.md)."""
