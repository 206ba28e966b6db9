"""Benchmarks: the program at scale and the handlers' hot paths, each against its floor."""
