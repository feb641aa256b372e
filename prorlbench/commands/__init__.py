"""commands: the subcommands behind ``prorlbench`` (:mod:`prorlbench.cli` parses, these act):
``run`` (run and report, with ``--dry-run``: ``dryrun``, ``estimate``), ``rescore`` (``rescore`` and
``paths``), ``list`` (``listing``, from the plugin catalogue ``plugindex``), ``fetch`` (``fetch``,
``datasources``), ``study`` (:mod:`prorlbench.study`), and the one-line errors and did-you-mean of
the parser (``parse``).

May import: the contract (prorlbench.errors, prorlbench.api, prorlbench.config), prorlbench.plugins,
console, folder, seq, settings, report, engine, study.
"""
