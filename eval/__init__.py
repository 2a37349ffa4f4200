"""Benchmarks and evaluation (depends on rag and ingest; nothing depends on it)."""
