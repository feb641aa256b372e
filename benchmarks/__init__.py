"""Benchmarks, run as ``python -m benchmarks.<name>`` from the repository root: speed and memory
(scoring, generate, rl_throughput, default_run, workers, startup, gpu_cell, gpu.sh) and the
measurements that drive the RL library or the plugins directly, which no core module may import
(grad_variance, test_selection, reward_state, rl_table, simulator_quality). The study's pipeline
(comparisons, splice, findings, verdicts, budget axis) is :mod:`prorlbench.study`, behind
``prorlbench study``."""
