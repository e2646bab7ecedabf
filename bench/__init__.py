"""Throughput benchmarks of cspulse against a plain Faust baseline (see bench/README.md)."""
