"""`cope bench`: speed and memory measurements printed as JSON (results in docs/benchmarks.md)."""
