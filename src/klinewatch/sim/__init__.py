"""The exchange simulator: recorded real markets served over the real wire formats.

A product feature (offline demo, replay) and the stand-in for every exchange in the tests
and benchmarks. It reads the data layout of ``shared/data/README.md`` lazily.
"""
