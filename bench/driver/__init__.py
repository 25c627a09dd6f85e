"""The benchmark driver: plans, runs and reports the workloads in ``bench/workloads``."""
