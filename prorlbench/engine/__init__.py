"""engine: a run computed: the grid, resumable, under the run-folder lock (``runner``); every name
and plugin config checked and built once (``resolve``); one dataset's data, simulators and cases
(``prepare``); one cell (``cell``, ``cellscore``); the rules a method must keep (``pathrules``);
frozen views, interrupts, timeouts and the run lock (``guards``); ``--select-on valid``
(``selection``); re-scoring a finished folder (``rescore``); seeds (``seeding``) and devices
(``devices``).

May import: the contract (prorlbench.errors, prorlbench.api, prorlbench.config,
prorlbench.hookspecs), prorlbench.plugins (the registry), console, folder, seq, settings, executors,
report.
"""
