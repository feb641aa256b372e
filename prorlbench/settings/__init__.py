"""settings: what a run asks for: ``RunConfig`` and its fields (``runconfig``, ``runfields``), method
and dataset variants (``variants``, ``dsvariants``), ``--set`` sweeps and ``methods = "all"``
(``sweeps``), the ``[display]`` table (``display``) and the run folder's ``config.toml`` (``rundocs``).

May import: the contract (prorlbench.errors, prorlbench.api, prorlbench.config), console, folder, seq.
"""
