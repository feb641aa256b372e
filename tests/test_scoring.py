"""One-pass path scoring: one encode row per path, per-step values consistent with the totals."""

from __future__ import annotations

import pytest
import torch

from prorlbench.api import Case
from prorlbench.seq import scoring
from prorlbench.seq.scoring import score_paths, target_stats_flat
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


def _grouped_cases(history: int):
    g = torch.Generator().manual_seed(history)
    cases, paths = [], []
    for c in range(40):
        hist = tuple(torch.randint(0, N_ITEMS, (history - c % 2,), generator=g).tolist())  # two lengths
        case = Case(history=hist, target=int(torch.randint(0, N_ITEMS, (1,), generator=g)))
        for k in range(1 + c % 5):  # groups of 1..5 rows, paths of 0..7 items
            cases.append(case)
            paths.append(tuple(torch.randint(0, N_ITEMS, ((c + 3 * k) % 8,), generator=g).tolist()))
    return cases, paths


@pytest.mark.parametrize("history", [3, 12, 40])  # 40: longer than the window, oldest items dropped
def test_rows_sharing_a_history_score_bit_for_bit_as_alone(history, monkeypatch):
    """On CPU SASRec encodes the history shared by adjacent rows (an RL case's G samples, a test
    case's K candidates) once per group (``encode_shared_prefix``), and the statistics of their
    common state after the history are computed once: every value is the same."""
    torch.manual_seed(5)
    sim = SASRec(SASRecConfig(max_seq_len=30), N_ITEMS).eval()
    cases, paths = _grouped_cases(history)
    calls, copied = [], []
    plain_encode = sim.encode
    monkeypatch.setattr(sim, "encode", lambda *a, **k: calls.append(1) or plain_encode(*a, **k))
    find_repeats = scoring.repeated_start_states
    monkeypatch.setattr(scoring, "repeated_start_states",
                        lambda *a: copied.append(find_repeats(*a)) or copied[-1])
    shared = score_paths(sim, cases, paths)
    assert not calls  # the shared encoder was taken, not its fallback
    assert copied[0] is not None and int((copied[0] != torch.arange(len(cases))).sum()) > 0  # S_0 copied
    # the plain way: every row encoded whole, every S_0 scored on its own
    monkeypatch.setattr(sim, "encode_shared_prefix", None)
    monkeypatch.setattr(scoring, "repeated_start_states", lambda *a: None)
    plain = score_paths(sim, cases, paths)
    assert calls == [1]
    for name in ("log_p", "rank", "accept", "valid"):
        assert torch.equal(getattr(shared, name), getattr(plain, name)), name


def test_encode_shared_prefix_equals_encode_and_falls_back_when_small():
    torch.manual_seed(6)
    sim = SASRec(SASRecConfig(max_seq_len=30), N_ITEMS).eval()
    seqs = torch.randint(0, N_ITEMS, (40, 12))
    seqs[:, 9:] = N_ITEMS  # padding
    for r in range(0, 40, 4):
        seqs[r : r + 4, :8] = seqs[r, :8]  # groups of 4 rows sharing 8 items
    group, first = torch.arange(40) // 4, torch.arange(0, 40, 4)
    lengths = torch.full((40,), 9)
    with torch.no_grad():
        assert torch.equal(sim.encode_shared_prefix(seqs, lengths, 8, group, first), sim.encode(seqs, lengths))
        small = sim.encode_shared_prefix(seqs[:8], lengths[:8], 8, group[:8], first[:2])  # 16 shared rows
        assert torch.equal(small, sim.encode(seqs[:8], lengths[:8]))


def test_repeated_start_states_point_to_the_first_row_and_keep_chunks_large():
    from prorlbench.seq.rowshare import repeated_start_states

    start = torch.tensor([[1.0, 2], [1, 2], [1, 2], [3, 4], [1, 2], [1, 2]])
    targets = torch.tensor([7, 7, 7, 7, 7, 8])  # the last row aims elsewhere: its own statistics
    live = torch.ones(6, 11, dtype=torch.bool)  # 66 rows of statistics, 63 once S_0 repeats go
    assert repeated_start_states(start, targets, live, chunk=33).tolist() == [0, 0, 0, 3, 4, 5]  # tails 0 and 30
    assert repeated_start_states(start, targets, live, chunk=31) is None  # tail 4 -> 1: another kernel
    assert repeated_start_states(start[[0, 3]], targets[:2], live[:2], chunk=33) is None  # nothing repeats


def test_repeated_start_states_are_exact_for_a_model_without_shared_encoding(monkeypatch):
    torch.manual_seed(7)
    sim = GRU4Rec(GRU4RecConfig(max_seq_len=30), N_ITEMS).eval()
    cases, paths = _grouped_cases(12)
    copied = []
    find_repeats = scoring.repeated_start_states
    monkeypatch.setattr(scoring, "repeated_start_states", lambda *a: copied.append(find_repeats(*a)) or copied[-1])
    shared = score_paths(sim, cases, paths)
    assert copied[0] is not None
    monkeypatch.setattr(scoring, "repeated_start_states", lambda *a: None)
    plain = score_paths(sim, cases, paths)
    for name in ("log_p", "rank", "accept"):
        assert torch.equal(getattr(shared, name), getattr(plain, name)), name
