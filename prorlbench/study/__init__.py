"""study: the science of docs/findings.md, behind ``prorlbench study CONFIG`` (``pipeline``: run or
merge the grid, report, comparisons, findings page; ``merge``: the cells of several sittings or
machines, checked): the paired comparisons of the paper's claims (``claims``), the splice of a block
whose cells are gone (``splice``, ``splice_md``, ``splice_safe``), the findings page from its
template (``findings``), the verdict table (``verdicts``), the budget axis (``budget_axis``), the
compact per-case table (``percase``) and the one-GPU-window study (``gpu``).

May import: the contract (prorlbench.errors, prorlbench.api, prorlbench.config), console, folder,
settings, report, engine, executors.
"""
