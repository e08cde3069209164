"""Benchmarks: shoal side by side with its peers (`python -m bench --help`)."""
