"""seq: sequences, simulators' scoring and the cases: one simulator pass per path (``scoring``,
``rowshare``), the greedy candidate rule (``decoding``), the user split and test cases (``cases``),
per-case metrics (``evaluate``), next-item training (``seqdata``, ``seqfit``, ``seqtrain``) and the
check that a simulator learned more than popularity (``strength``).

May import: the contract (prorlbench.errors, prorlbench.api, prorlbench.config), console, folder.
"""
