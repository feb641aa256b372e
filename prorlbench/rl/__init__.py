"""The RL family of SPEC section 5: one policy, one rollout/reward path, one trainer.

Methods differ only in the advantage estimator (``plugins/methods/rl_family.py``; ``docs/rl.md``).

* :mod:`.policy`     ``PathPolicy``: causal transformer over ``[H, <T>, path]``, items + STOP.
* :mod:`.rewards`    per-step raw ctr / ioi / ior from the training simulator (one pass per path).
* :mod:`.estimators` ``AdvantageBatch`` (what an estimator receives), ``RewardNormalizer`` (SRC),
  and the building blocks of estimators (positional baseline, group mean/std, leave-one-out).
* :mod:`.sft`        stage 1: supervised pre-training on reference paths, cached per run.
* :mod:`.trainer`    stage 2: sampling, loss with KL to the SFT policy, diagnostics, selection.
* :mod:`.method`     ``RLMethod`` and ``method_from_estimator`` (the RL family plugin makes
  every registered estimator a method with it).
* :mod:`.config`     ``RLConfig`` with the ``quick`` and ``paper`` profiles.

May import: the contract (prorlbench.errors, prorlbench.api, prorlbench.config), console, folder, seq.
"""
