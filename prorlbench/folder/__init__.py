"""folder: the run folder and the files on disk: atomic writes and locks (``files``), TOML writing
(``tomlwriter``), the path rules of config files (``configpaths``), fingerprints and file hashes
(``fingerprint``), the per-cell files and merged tables (``results``: ``RunFolder``), stored
candidate paths (``store``), run names and the cache folder (``runnames``).

May import: the contract (prorlbench.errors, prorlbench.api, prorlbench.config), console.
"""
