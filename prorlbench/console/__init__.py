"""console: what a run shows while it works: progress bars (``progress``: a tqdm bar in a terminal,
plain periodic lines in a batch job) and its logs (``logs``: ``run.log``, the per-cell training logs,
TensorBoard scalars).

May import: the contract (prorlbench.errors, prorlbench.api, prorlbench.config).
"""
