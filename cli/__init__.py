"""The ``swarmrank`` command line: daemons, asking, auditing, the demo and the benchmarks."""
