"""evaluate_paths: every candidate scored once, @K = best of the first K candidates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prorlbench.api import Case
from prorlbench.seq.evaluate import best_of_k, evaluate_paths, per_path_values
from prorlbench_plugins.metrics.core import METRICS
from prorlbench_plugins.simulators.sasrec import SASRec, SASRecConfig

N_ITEMS = 40


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = SASRec(SASRecConfig(hidden=16, inner=32, max_seq_len=20), N_ITEMS).eval()
    for p in m.parameters():
        p.requires_grad_(False)
    with torch.no_grad():  # spread the logits so ranks are distinct
        m.item_emb.weight.mul_(30)
    return m


def test_best_of_k_directions_and_short_lists():
    v = np.array([[1.0, 5.0, 3.0], [2.0, np.nan, np.nan]])
    counts = np.array([3, 1])
    ioi = np.array([[0.0, -1.0, 9.0], [4.0, np.nan, np.nan]])
    assert best_of_k(v, counts, 1, True).tolist() == [1.0, 2.0]
    assert best_of_k(v, counts, 2, True).tolist() == [5.0, 2.0]
    assert best_of_k(v, counts, 10, False).tolist() == [1.0, 2.0]
    # no direction: value of the best-by-IoI candidate among the first K
    assert best_of_k(v, counts, 2, None, ioi).tolist() == [1.0, 2.0]
    assert best_of_k(v, counts, 3, None, ioi).tolist() == [3.0, 2.0]


def test_evaluate_paths_matches_per_path_best_of_k(model):
    rng = np.random.default_rng(1)
    cases, cands = [], []
    for c in range(6):
        hist = tuple(int(x) for x in rng.choice(N_ITEMS, 5, replace=False))
        cases.append(Case(history=hist, target=int(rng.integers(N_ITEMS)), case_id=f"c{c}"))
        n_cand = [3, 1, 0, 2, 3, 3][c]
        cands.append([tuple(int(x) for x in rng.integers(0, N_ITEMS + 3, int(rng.integers(0, 5))))
                      for _ in range(n_cand)])
    attrs = tuple(frozenset({i % 3, 3 + i % 2}) for i in range(N_ITEMS))
    metrics = list(METRICS)
    df = evaluate_paths(model, cases, cands, metrics, ks=(1, 2, 3), item_attributes=attrs, batch_size=4)
    assert list(df.columns) == ["case", "metric", "k", "value"]
    assert len(df) == 6 * len(metrics) * 3
    assert df["case"].iloc[0] == "c0"
    # brute force: score each candidate on its own
    for case, cs in zip(cases, cands):
        cs = cs or [()]
        per = per_path_values(model, [case] * len(cs), cs, metrics, item_attributes=attrs)
        for m in metrics:
            for k in (1, 2, 3):
                vals = per[m.name][:k]
                if m.higher_is_better is None:
                    want = vals[int(np.argmax(per["_ioi"][:k]))]
                else:
                    want = vals.max() if m.higher_is_better else vals.min()
                got = df[(df.case == case.case_id) & (df.metric == m.name) & (df.k == k)].value
                assert len(got) == 1
                assert got.iloc[0] == pytest.approx(want, abs=1e-5), (case.case_id, m.name, k)
    # @K can only improve with K for directed metrics
    piv = df[df.metric == "ioi"].pivot(index="case", columns="k", values="value")
    assert (piv[2] >= piv[1] - 1e-9).all() and (piv[3] >= piv[2] - 1e-9).all()


def test_each_candidate_scored_once(model):
    calls = []
    orig = model.encode

    class Counting(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model
            self.n_items, self.max_seq_len = model.n_items, model.max_seq_len

        def encode(self, seqs, lengths):
            calls.append(seqs.shape[0])
            return orig(seqs, lengths)

        def logits(self, s):
            return model.logits(s)

        def accept_logit(self, s, i):
            return model.accept_logit(s, i)

    cases = [Case(history=(1, 2, 3), target=7, case_id=str(i)) for i in range(5)]
    cands = [[(4, 5), (6,), ()] for _ in range(5)]
    evaluate_paths(Counting(), cases, cands, [m for m in METRICS if not m.needs_attributes], batch_size=4)
    assert sum(calls) == 15 and len(calls) == 4


def test_attribute_metric_without_attributes_is_an_error(model):
    with pytest.raises(ValueError, match="attributes"):
        evaluate_paths(model, [Case((1,), 2)], [[(3,)]], list(METRICS))


def test_device_argument_is_checked(model):
    evaluate_paths(model, [Case((1,), 2)], [[(3,)]], [METRICS[0]], device="cpu")
    with pytest.raises(ValueError, match="model is on"):
        evaluate_paths(model, [Case((1,), 2)], [[(3,)]], [METRICS[0]], device="meta")
