"""Fake platforms that speak the real wire formats, for tests, benchmarks and ``run --sandbox``.

Written from the platforms' documentation, never from our clients: it imports nothing of ours.
"""
