"""Behavioural tests of the literature baselines: rec2inf, ipg, irn, shortest-path.

Each runs on a tiny hand-made world where the right answer is known, with fake backbones
(small nn.Modules implementing the SequenceModel protocol plus ``item_embeddings()``).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prorlbench.api import Case, CaseSplits, FitContext, Interactions
from prorlbench.config import build_config
from prorlbench.errors import ConfigError
from prorlbench.plugins import load_registry
from prorlbench_plugins.methods import ipg as ipg_mod
from prorlbench_plugins.methods import irn as irn_mod
from prorlbench_plugins.methods import rec2inf as rec2inf_mod
from prorlbench_plugins.methods import shortest_path as sp_mod

@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: intra-op threads only add overhead (and stall on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------------------------
# Fakes
# --------------------------------------------------------------------------------------------


class TableModel(nn.Module):
    """u(S) = one-hot of the last item; score(S) = table[last item]; item_embeddings = ``emb``."""

    def __init__(self, table: torch.Tensor, emb: torch.Tensor, max_seq_len: int = 50):
        super().__init__()
        self.n_items, self.max_seq_len = table.shape[0], max_seq_len
        self.register_buffer("table", table.float())
        self.register_buffer("emb", emb.float())

    def encode(self, seqs, lengths):
        return F.one_hot(seqs, self.n_items + 1)[..., : self.n_items].float()

    def logits(self, states):
        return states @ self.table

    def accept_logit(self, states, items):
        return self.logits(states).gather(-1, items[..., None]).squeeze(-1)

    def item_embeddings(self):
        return self.emb


class EmbModel(nn.Module):
    """u(S) = e_{last item}; score(S) = u . e_j; accept = sigmoid(u . e_i)."""

    def __init__(self, emb: torch.Tensor, max_seq_len: int = 50):
        super().__init__()
        self.n_items, self.max_seq_len = emb.shape[0], max_seq_len
        self.register_buffer("emb", emb.float())

    def encode(self, seqs, lengths):
        padded = torch.cat([self.emb, self.emb.new_zeros(1, self.emb.shape[1])])
        return padded[seqs]

    def logits(self, states):
        return states @ self.emb.T

    def accept_logit(self, states, items):
        return (states * self.emb[items]).sum(-1)

    def item_embeddings(self):
        return self.emb


class NullLogger:
    def __init__(self):
        self.rows = []

    def log(self, step, **values):
        self.rows.append((step, values))


def make_ctx(n_items, train_seqs, backbone=None, max_path_len=4, attributes=None, tmp=Path("."), seed=0):
    data = Interactions(name="tiny", n_items=n_items,
                        sequences={"train": [tuple(s) for s in train_seqs], "valid": [], "test": []},
                        item_attributes=attributes)
    calls = []

    def make_backbone(kind, s):
        calls.append((kind, s))
        return backbone

    ctx = FitContext(data=data, cases=CaseSplits([], [], []), simulator=backbone, simulator_name="fake",
                     device=torch.device("cpu"), seed=seed, cache_dir=tmp, max_path_len=max_path_len,
                     logger=NullLogger(), progress=False,
                     make_backbone=make_backbone if backbone is not None else None)
    ctx.backbone_calls = calls  # type: ignore[attr-defined]
    return ctx


def check_paths(cases, out, k, max_path_len, n_items):
    """Generic validity: count of candidates, length, no history item, no repeat, no target."""
    assert len(out) == len(cases)
    for case, cands in zip(cases, out):
        assert 1 <= len(cands) <= k
        assert len(set(cands)) == len(cands), "candidates of one case are distinct"
        for p in cands:
            assert isinstance(p, tuple)
            assert len(p) <= max_path_len
            assert all(isinstance(i, int) and 0 <= i < n_items for i in p)
            assert not set(p) & set(case.history)
            assert len(set(p)) == len(p)
            assert case.target not in p


# --------------------------------------------------------------------------------------------
# rec2inf
# --------------------------------------------------------------------------------------------


def rec2inf_world():
    """10 items, H = (0, 1), T = 9. From item 1 the backbone's top-3 is 2 > 3 > 4; among them
    4 is the closest to T (item 7 is closer still but outside the top-3). From 4, T is in the
    top-3 (stop). From 3 the top-3 is 5, 6, 8 and 8 is the closest; from 8, T is top."""
    n = 10
    table = -0.01 * torch.arange(n).float().repeat(n, 1)  # weak default preference for low ids
    table[1, [0, 2, 3, 4, 5, 6, 7, 8, 9]] = torch.tensor([10.0, 5, 4, 3, 2, 1, 0.5, 0.2, -5])
    table[4, 9] = 5.0
    table[3, [5, 6, 8, 9]] = torch.tensor([5.0, 4, 3, -5])
    table[8, 9] = 5.0
    emb = torch.tensor([[0, -1], [0, -1], [0, 1], [1, 1], [1, 0.5], [-1, 0], [-1, 0.1],
                        [1, 0.05], [1, 0.2], [1, 0]], dtype=torch.float)
    return TableModel(table, emb), Case(history=(0, 1), target=9)


def test_rec2inf_picks_closest_to_target_among_top_kc(tmp_path):
    model, case = rec2inf_world()
    m = rec2inf_mod.Rec2Inf(rec2inf_mod.Rec2InfConfig(k_c=3))
    ctx = make_ctx(10, [(0, 1, 2)], backbone=model, tmp=tmp_path, seed=7)
    m.fit(ctx)
    assert ctx.backbone_calls == [("sasrec", 7)], "own backbone, asked for with the run seed"
    assert m.generate([case], 1) == [[(4,)]]
    # Candidate 1 takes the 2nd-closest first step (3), then the rule: 8, then T (stop).
    assert m.generate([case], 2) == [[(4,), (3, 8)]]


def test_rec2inf_stops_when_target_is_a_candidate(tmp_path):
    model, case = rec2inf_world()
    m = rec2inf_mod.Rec2Inf(rec2inf_mod.Rec2InfConfig(k_c=10))
    m.fit(make_ctx(10, [(0, 1, 2)], backbone=model, tmp=tmp_path))
    out = m.generate([case], 2)
    assert out[0][0] == ()  # T is among the candidates: chosen at once, empty path
    assert out[0][1][0] == 7  # the next closest item overall


def test_pop2inf_uses_popularity_candidates(tmp_path):
    model, case = rec2inf_world()
    # Popularity: 2, 3, 4 (5 each) > 5 (4) > 6 (3) > 8 (2) > 7 (1) > T (0).
    seqs = [(2, 3, 4)] * 5 + [(5,)] * 4 + [(6,)] * 3 + [(8,)] * 2 + [(7,)]
    m = rec2inf_mod.Rec2Inf(rec2inf_mod.Rec2InfConfig(backbone="pop", k_c=3))
    ctx = make_ctx(10, seqs, backbone=model, tmp=tmp_path)
    m.fit(ctx)
    assert [kind for kind, _ in ctx.backbone_calls] == ["sasrec"]  # only for the embeddings
    path = m.generate([case], 1)[0][0]
    # Top-3 popular {2, 3, 4} -> 4 (closest to T); {2, 3, 5} -> 3; {2, 5, 6} -> 2; {5, 6, 8} -> 8.
    # T (never consumed) never enters the top-3: the path runs to max_path_len.
    assert path == (4, 3, 2, 8)


def test_rec2inf_attribute_similarity(tmp_path):
    model, case = rec2inf_world()
    attrs = [frozenset()] * 10
    attrs[2], attrs[3], attrs[4], attrs[9] = frozenset({2}), frozenset({0}), frozenset({0, 1, 2}), frozenset({0, 1})
    attrs = tuple(attrs)
    m = rec2inf_mod.Rec2Inf(rec2inf_mod.Rec2InfConfig(backbone="pop", similarity="attribute", k_c=3))
    ctx = make_ctx(10, [(2, 3, 4)] * 3, backbone=model, attributes=attrs, tmp=tmp_path)
    m.fit(ctx)
    assert ctx.backbone_calls == []  # POP2Inf with attributes needs no backbone at all
    # Jaccard to T={0,1}: item 4 -> 2/3, item 3 -> 1/2, item 2 -> 0.
    assert m.generate([case], 3)[0][0][0] == 4
    assert [p[0] for p in m.generate([case], 3)[0]] == [4, 3, 2]


def test_rec2inf_attribute_falls_back_without_attributes(tmp_path):
    model, case = rec2inf_world()
    m = rec2inf_mod.Rec2Inf(rec2inf_mod.Rec2InfConfig(similarity="attribute", k_c=3))
    m.fit(make_ctx(10, [(0, 1, 2)], backbone=model, tmp=tmp_path))
    assert m.generate([case], 1) == [[(4,)]]  # the embedding rule


def test_rec2inf_bad_config():
    with pytest.raises(ConfigError):
        build_config(rec2inf_mod.Rec2InfConfig, {"backbone": "bert"})
    with pytest.raises(ConfigError):
        build_config(rec2inf_mod.Rec2InfConfig, {"similarity": "genre"})


# --------------------------------------------------------------------------------------------
# ipg
# --------------------------------------------------------------------------------------------


def ipg_world():
    """2-d embeddings. User state after H=(0,) is e_0 = (1, 0); T = 5, e_T = (-3, 2).

    With γ = 0.8, score(j) = σ(u·e_j) · 0.2 · (e_T·e_j − e_T·ê_u), e_T·ê_u = −3:
      item 1 (2, 0):    σ(2)·0.2·(−6+3)  < 0    (most acceptable, moves away from T)
      item 2 (1, 1):    σ(1)·0.2·(−1+3)  = 0.29
      item 3 (−1, 1.5): σ(−1)·0.2·(6+3)  = 0.48
      item 6 (0, 2):    σ(0)·0.2·(4+3)   = 0.70  <- best: acceptable and toward T
      T (−3, 2):        σ(−3)·0.2·(13+3) = 0.15
    After 6: u = (0, 2), ê_u = (0.8, 0.4), and T scores σ(4)·0.2·14.6 = 2.87, the best: stop.
    """
    emb = torch.tensor([[1, 0], [2, 0], [1, 1], [-1, 1.5], [0.5, -1], [-3, 2], [0, 2]], dtype=torch.float)
    return EmbModel(emb), Case(history=(0,), target=5)


def test_ipg_moves_user_toward_target(tmp_path):
    model, case = ipg_world()
    m = ipg_mod.IPG()
    ctx = make_ctx(7, [(0, 1)], backbone=model, tmp=tmp_path, seed=3)
    m.fit(ctx)
    assert ctx.backbone_calls == [("sasrec", 3)]
    assert m.generate([case], 1) == [[(6,)]]
    # Candidates 1 and 2 start with the 2nd and 3rd best first steps (3 then 2).
    out = m.generate([case], 3)[0]
    assert [p[0] for p in out] == [6, 3, 2]
    assert out[1] == (3,)  # from 3, T is the best: stop


def ipg_reference(emb, history, target, gamma, max_len, guidance="dot"):
    """Plain-Python IPG for EmbModel (state = embedding of the last item)."""
    E = emb.tolist()
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731
    cos = lambda a, b: dot(a, b) / ((dot(a, a) ** 0.5) * (dot(b, b) ** 0.5) + 1e-30)  # noqa: E731
    seq, path = list(history), []
    pref = list(E[history[-1]])
    for _ in range(max_len):
        u = E[seq[-1]]
        best, best_j = None, None
        for j in range(len(E)):
            if j in history or j in path:
                continue
            p = 1 / (1 + torch.exp(torch.tensor(-dot(u, E[j]))).item())
            if guidance == "dot":
                g = (1 - gamma) * (dot(E[target], E[j]) - dot(E[target], pref))
            else:
                g = (1 - gamma) * (cos(E[target], E[j]) - cos(E[target], pref))
            if best is None or p * g > best:
                best, best_j = p * g, j
        if best_j is None or best_j == target:
            break
        path.append(best_j)
        seq.append(best_j)
        pref = [gamma * a + (1 - gamma) * b for a, b in zip(pref, E[best_j])]
    return tuple(path)


@pytest.mark.parametrize("guidance", ["dot", "cosine"])
def test_ipg_matches_plain_reference(tmp_path, guidance):
    g = torch.Generator().manual_seed(0)
    n = 25
    emb = torch.randn(n, 4, generator=g)
    model = EmbModel(emb)
    rng = random.Random(1)
    cases = []
    for _ in range(12):
        h = tuple(rng.sample(range(n), 4))
        t = rng.choice([i for i in range(n) if i not in h])
        cases.append(Case(history=h, target=t))
    m = ipg_mod.IPG(ipg_mod.IPGConfig(gamma=0.7, guidance=guidance, batch_size=5))
    m.fit(make_ctx(n, [(0, 1)], backbone=model, max_path_len=5, tmp=tmp_path))
    out = m.generate(cases, 1)
    for c, cands in zip(cases, out):
        assert cands[0] == ipg_reference(emb, c.history, c.target, 0.7, 5, guidance)


# --------------------------------------------------------------------------------------------
# shortest-path
# --------------------------------------------------------------------------------------------


CHAIN_SEQS = [(0, 1, 2, 3)] * 5 + [(0, 4, 5, 6, 3), (0, 7), (9, 8, 9, 8)]


def fit_sp(tmp_path, seqs=CHAIN_SEQS, max_path_len=4, **cfg):
    m = sp_mod.ShortestPath(sp_mod.ShortestPathConfig(**cfg))
    m.fit(make_ctx(10, seqs, max_path_len=max_path_len, tmp=tmp_path))
    return m


def test_shortest_path_finds_planted_chain(tmp_path):
    m = fit_sp(tmp_path)
    # 0 -> 1 -> 2 -> 3 has probability 5/7 * 1 * 1; the detour via 4 has 1/7; 7 is a dead end.
    assert m.generate([Case(history=(8, 0), target=3)], 1) == [[(1, 2)]]
    assert m.generate([Case(history=(8, 0), target=3)], 5) == [[(1, 2), (4, 5, 6)]]


def test_shortest_path_avoids_history_and_truncates(tmp_path):
    m = fit_sp(tmp_path)
    # 1 is in the history: the first hop into it is not used.
    assert m.generate([Case(history=(1, 0), target=3)], 3) == [[(4, 5, 6)]]
    # A shortest path through a history item skips it: from 0 to 3 via 1, 2 with 2 in H.
    assert m.generate([Case(history=(2, 0), target=3)], 1) == [[(1,)]]
    m2 = fit_sp(tmp_path, seqs=[(0, 4, 5, 6, 3)], max_path_len=2)
    assert m2.generate([Case(history=(0,), target=3)], 1) == [[(4, 5)]]


def test_shortest_path_fallbacks(tmp_path):
    m = fit_sp(tmp_path)
    # 7 cannot reach 3: start from the latest history item that can (0).
    assert m.generate([Case(history=(0, 7), target=3)], 1) == [[(1, 2)]]
    assert fit_sp(tmp_path, fallback="empty").generate([Case(history=(0, 7), target=3)], 1) == [[()]]
    # Nothing reaches 0 (never a successor): empty path.
    assert m.generate([Case(history=(1, 2), target=0)], 3) == [[()]]
    # A direct edge to T: empty path.
    assert m.generate([Case(history=(1, 2), target=3)], 1) == [[()]]


# --------------------------------------------------------------------------------------------
# irn
# --------------------------------------------------------------------------------------------


def irn_sequences(n_seq=240, seed=0):
    """History (a, b), a in 0..2, b in 3..5; then objective 8 always via 6, 7 and objective 11
    always via 9, 10. Each next item is determined by the current item and the objective."""
    rng = random.Random(seed)
    return [(rng.randrange(3), 3 + rng.randrange(3)) + ((6, 7, 8) if i % 2 == 0 else (9, 10, 11))
            for i in range(n_seq)]


@pytest.fixture(scope="module")
def trained_irn(tmp_path_factory):
    cfg = irn_mod.IRNConfig(d_model=32, n_layers=1, n_heads=2, dropout=0.0, max_history=5,
                            steps=STEPS_IRN, batch_size=64, lr=3e-3)
    m = irn_mod.IRN(cfg)
    ctx = make_ctx(12, irn_sequences(), max_path_len=4, tmp=tmp_path_factory.mktemp("irn"))
    m.fit(ctx)
    return m, ctx


STEPS_IRN = 300


def test_irn_learns_planted_path(trained_irn):
    m, ctx = trained_irn
    losses = [v["loss"] for _, v in ctx.logger.rows]
    assert losses[-1] < 0.6 * losses[0]
    cases = [Case(history=(a, b), target=t) for a in range(3) for b in range(3, 6) for t in (8, 11)]
    out = m.generate(cases, 1)
    for c, cands in zip(cases, out):
        assert cands[0] == ((6, 7) if c.target == 8 else (9, 10)), c


def test_irn_generic_and_deterministic(trained_irn):
    m, _ = trained_irn
    rng = random.Random(2)
    cases = [Case(history=tuple(rng.sample(range(12), 3)), target=rng.choice([8, 11]))
             for _ in range(10)]
    cases = [c for c in cases if c.target not in c.history]
    out = m.generate(cases, 3)
    check_paths(cases, out, 3, 4, 12)
    assert out == m.generate(cases, 3)


def test_irn_pim_bias():
    net = irn_mod.IRNNet(5, 6, irn_mod.IRNConfig(d_model=8, n_heads=2, n_layers=1))
    seqs = torch.tensor([[5, 5, 0, 1, 2, 3]])  # two pad slots, objective 3 in the last slot
    hist = torch.tensor([[False, False, True, True, False, False]])
    bias = net.pim_bias(seqs, hist)
    r_u = net.user_proj(net.user_embedding(seqs, hist))[0]
    for h in range(2):
        b = bias[0, h]
        assert torch.allclose(b[:, 5], (net.w_obj * r_u[h]).expand(6))  # objective column
        for i in range(6):
            for j in range(5):
                visible = j <= i and j >= 2
                assert (b[i, j] == net.w_h).item() if visible else b[i, j].item() == float("-inf")


def test_irn_windows_are_left_padded():
    import numpy as np
    seqs = [(0, 1, 2, 3, 4), (5, 6)]
    flat = np.concatenate([np.asarray(s) for s in seqs])
    pos = np.concatenate([np.arange(len(s)) for s in seqs])
    eligible = np.nonzero(pos >= 1)[0]
    s, h, t = irn_mod.sample_windows(flat, pos, eligible, np.random.default_rng(0), 50, 6, 1, 2, 9)
    for row, hm, tg in zip(s, h, t):
        real = row[row != 9]
        assert row[-1] == real[-1]  # the objective is in the last slot
        assert list(real) in ([0, 1, 2, 3, 4][i:j] for i in range(5) for j in range(i + 2, 6)) or \
            list(real) == [5, 6]
        assert (row[: len(row) - len(real)] == 9).all()
        first = len(row) - len(real)
        assert list(np.nonzero(hm)[0]) == list(range(first, min(first + 2, 5)))
        assert list(tg[first:-1]) == list(real[1:]) and (tg[:first] == 9).all() and tg[-1] == 9


# --------------------------------------------------------------------------------------------
# Generic checks over all four on a random world
# --------------------------------------------------------------------------------------------


def random_world(n=30, seed=0):
    rng = random.Random(seed)
    seqs = [tuple(rng.choice(range(n)) for _ in range(rng.randint(3, 12))) for _ in range(80)]
    cases = []
    for _ in range(15):
        h = tuple(rng.sample(range(n), 5))
        cases.append(Case(history=h, target=rng.choice([i for i in range(n) if i not in h])))
    emb = torch.randn(n, 6, generator=torch.Generator().manual_seed(seed))
    attrs = tuple(frozenset(rng.sample(range(4), rng.randint(0, 2))) for _ in range(n))
    return n, seqs, cases, EmbModel(emb), attrs


@pytest.mark.parametrize("name,cfg", [
    ("rec2inf", {"k_c": 5}), ("rec2inf", {"backbone": "pop"}), ("rec2inf", {"similarity": "attribute"}),
    ("ipg", {}), ("ipg", {"guidance": "cosine"}), ("shortest-path", {}),
    ("irn", {"steps": 20, "d_model": 16, "batch_size": 32}),
])
def test_generic_validity(tmp_path, name, cfg):
    n, seqs, cases, model, attrs = random_world()
    reg = load_registry(use_entry_points=False, extra_plugins=[
        ("rec2inf", rec2inf_mod), ("ipg", ipg_mod), ("irn", irn_mod), ("shortest_path", sp_mod)])
    spec = reg.method(name)
    assert spec.family == "baseline"
    m = spec.factory(build_config(spec.config_cls, cfg))
    m.fit(make_ctx(n, seqs, backbone=model, max_path_len=4, attributes=attrs, tmp=tmp_path))
    out = m.generate(cases, 3)
    check_paths(cases, out, 3, 4, n)
    assert out == m.generate(cases, 3)
    assert [c[0] for c in m.generate(cases, 1)] == [c[0] for c in out]  # candidate 0 is the same


def test_stops_at_target_immediately_when_it_is_best(tmp_path):
    """If T is the step's choice the path ends before it (rec2inf and ipg)."""
    emb = torch.tensor([[1, 0], [0.9, 0.1], [0, 1], [1, 0.01]], dtype=torch.float)
    model = EmbModel(emb)
    case = Case(history=(0,), target=3)  # T is most acceptable and closest: chosen at once
    for m in (rec2inf_mod.Rec2Inf(), ipg_mod.IPG()):
        m.fit(make_ctx(4, [(0, 1)], backbone=model, tmp=tmp_path))
        assert m.generate([case], 1) == [[()]]


class NoEmbModel(EmbModel):
    """A backbone without ``item_embeddings()`` and with a per-item bias in its logits."""

    item_embeddings = None  # type: ignore[assignment]

    def logits(self, states):
        return states @ self.emb.T + torch.arange(self.n_items, device=states.device).float()


def test_item_embeddings_fallback_reads_affine_head():
    emb = torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    from prorlbench.seq.scoring import item_embedding_matrix

    assert torch.allclose(item_embedding_matrix(NoEmbModel(emb)), emb, atol=1e-5)
    assert torch.equal(item_embedding_matrix(EmbModel(emb)), emb)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["rec2inf", "ipg", "irn", "shortest-path"])
def test_runs_on_cuda(tmp_path, name):
    """Same results on CUDA as on the CPU for the deterministic rules; IRN just runs and is valid."""
    n, seqs, cases, model, attrs = random_world()
    mods = {"rec2inf": rec2inf_mod.Rec2Inf, "ipg": ipg_mod.IPG, "shortest-path": sp_mod.ShortestPath}
    outs = []
    for dev in ("cpu", "cuda"):
        if name == "irn":
            m = irn_mod.IRN(irn_mod.IRNConfig(steps=20, d_model=16, batch_size=32))
        else:
            m = mods[name]()
        ctx = make_ctx(n, seqs, backbone=EmbModel(model.emb.clone()).to(dev), max_path_len=4,
                       attributes=attrs, tmp=tmp_path)
        ctx.device = torch.device(dev)
        m.fit(ctx)
        outs.append(m.generate(cases, 3))
        check_paths(cases, outs[-1], 3, 4, n)
    if name != "irn":
        assert outs[0] == outs[1]
