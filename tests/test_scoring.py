"""One-pass path scoring: one encode row per path, per-step values consistent with the totals."""

from __future__ import annotations

import pytest
import torch

from prorlbench.api import Case
from prorlbench.scoring import score_paths, target_stats_flat
from prorlbench_plugins.simulators.gru4rec import GRU4Rec, GRU4RecConfig
from prorlbench_plugins.simulators.sasrec import SASRec, SASRecConfig

N_ITEMS = 50


def _frozen(m):
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        m.item_emb.weight.mul_(20)
    return m


@pytest.fixture(scope="module", params=["sasrec", "gru4rec"])
def model(request):
    torch.manual_seed(3)
    if request.param == "sasrec":
        return _frozen(SASRec(SASRecConfig(hidden=16, inner=32, max_seq_len=30), N_ITEMS))
    return _frozen(GRU4Rec(GRU4RecConfig(embedding=16, hidden=16, max_seq_len=30), N_ITEMS))


class CountingModel(torch.nn.Module):
    """Wraps a model and records the number of rows of every encode call."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.n_items, self.max_seq_len = inner.n_items, inner.max_seq_len
        self.rows: list[int] = []

    def encode(self, seqs, lengths):
        self.rows.append(seqs.shape[0])
        return self.inner.encode(seqs, lengths)

    def logits(self, s):
        return self.inner.logits(s)

    def accept_logit(self, s, i):
        return self.inner.accept_logit(s, i)


def _cases_paths(n=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    cases, paths = [], []
    for r in range(n):
        hl = int(torch.randint(1, 8, (1,), generator=g))
        hist = tuple(torch.randint(0, N_ITEMS, (hl,), generator=g).tolist())
        cases.append(Case(history=hist, target=int(torch.randint(0, N_ITEMS, (1,), generator=g))))
        paths.append(tuple(torch.randint(0, N_ITEMS, (r % 6,), generator=g).tolist()))
    return cases, paths


def test_one_encode_row_per_path(model):
    cases, paths = _cases_paths()
    counting = CountingModel(model)
    score_paths(counting, cases, paths)
    assert counting.rows == [len(paths)]  # one call, n rows in total: not one per step


def test_per_step_ioi_sums_to_ioi_and_matches_direct_encoding(model):
    cases, paths = _cases_paths()
    sc = score_paths(model, cases, paths)
    steps = sc.log_p[:, 1:] - sc.log_p[:, :-1]
    total = sc.final(sc.log_p) - sc.log_p[:, 0]
    assert torch.allclose(steps.sum(1), total, atol=1e-5)
    # every S_k encoded on its own gives the same log p, rank and acceptance
    for r, (c, p) in enumerate(zip(cases, paths)):
        for k in range(len(p) + 1):
            seq = torch.tensor([list(c.history) + list(p[:k])])
            u = model.encode(seq, torch.tensor([seq.shape[1]]))[:, -1]
            lp, rk = target_stats_flat(model, u, torch.tensor([c.target]))
            assert sc.log_p[r, k].item() == pytest.approx(lp.item(), abs=1e-4)
            assert sc.rank[r, k].item() == rk.item()
            if k < len(p):
                acc = torch.sigmoid(model.accept_logit(u, torch.tensor([p[k]])))
                assert sc.accept[r, k].item() == pytest.approx(acc.item(), abs=1e-5)
        # past the length: log p and rank repeat S_m, acceptance is 0
        m = len(p)
        assert torch.all(sc.log_p[r, m:] == sc.log_p[r, m])
        assert torch.all(sc.accept[r, m:] == 0)


def test_unknown_ids_dropped_and_validity(model):
    cases = [Case(history=(1, 2, 3), target=9)]
    sc = score_paths(model, cases, [(4, 99, 1, 4, -1, 5)])
    assert sc.n_unknown.tolist() == [2]
    assert sc.lengths.tolist() == [4]
    assert sc.valid[0, :4].tolist() == [True, False, False, True]


def test_chunking_does_not_change_values(model):
    cases, paths = _cases_paths(seed=4)
    a = score_paths(model, cases, paths)
    b = score_paths(model, cases, paths, chunk=3)
    assert torch.allclose(a.log_p, b.log_p, atol=1e-6) and torch.equal(a.rank, b.rank)


@pytest.mark.parametrize("kind", ["sasrec", "gru4rec"])
def test_encode_is_causal(kind):
    torch.manual_seed(0)
    m = (SASRec(SASRecConfig(hidden=16, inner=32, max_seq_len=12), N_ITEMS) if kind == "sasrec"
         else GRU4Rec(GRU4RecConfig(embedding=16, hidden=16, max_seq_len=12), N_ITEMS)).eval()
    seqs = torch.randint(0, N_ITEMS, (4, 12))
    with torch.no_grad():
        full = m.encode(seqs, torch.full((4,), 12))
        for t in range(1, 12):
            pref = m.encode(seqs[:, :t], torch.full((4,), t))
            assert torch.allclose(pref, full[:, :t], atol=1e-5)
            # right padding after the prefix does not change its rows
            padded = torch.cat([seqs[:, :t], torch.full((4, 12 - t), N_ITEMS)], 1)
            assert torch.allclose(m.encode(padded, torch.full((4,), t))[:, :t], full[:, :t], atol=1e-5)
