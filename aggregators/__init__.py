"""Metric logic: windows, buckets, per-family state, and the Redis read/write layers."""
