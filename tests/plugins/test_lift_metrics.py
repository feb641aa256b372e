"""ioi-lift / ior-lift: path value minus the mean value of R seeded random valid paths of the same
length for the same case, scored by the evaluating simulator."""

from __future__ import annotations

import torch

from prorlbench.api import Case, MetricContext
from prorlbench.seq.evaluate import evaluate_paths, per_path_values
from prorlbench.plugins import load_registry
from prorlbench.seq.scoring import histories_tensor, score_paths
from prorlbench_plugins.metrics.core import ioi, ior
from prorlbench_plugins.metrics.lift import (_M1, SAMPLES, case_key, lift_metric, mix64, random_baseline,
                                             random_valid_paths)
from prorlbench_plugins.simulators.sasrec import SASRec, SASRecConfig

N_ITEMS = 40


def _model():
    torch.manual_seed(0)
    m = SASRec(SASRecConfig(hidden=16, inner=32, max_seq_len=30), N_ITEMS).eval()
    with torch.no_grad():
        m.item_emb.weight.mul_(10)
    return m


CASES = [Case(history=(1, 2, 3, 4), target=9, case_id="u1"), Case(history=(5, 6), target=7, case_id="u2"),
         Case(history=tuple(range(10, 30)), target=31, case_id="u3")]


def _draw(cases, lengths, keys):
    hist, hist_len = histories_tensor(cases, N_ITEMS)
    targets = torch.tensor([c.target for c in cases])
    return random_valid_paths(hist, hist_len, targets, torch.tensor(keys), torch.tensor(lengths), N_ITEMS)


def test_random_paths_are_valid_distinct_and_of_the_asked_length():
    cases = CASES * 20
    lengths = [(i % 7) + 1 for i in range(len(cases))]
    paths, got = _draw(cases, lengths, list(range(len(cases))))
    assert got.tolist() == lengths
    for c, p, m in zip(cases, paths.tolist(), lengths):
        items = p[:m]
        assert all(i < N_ITEMS for i in items) and all(i == N_ITEMS for i in p[m:])
        assert len(set(items)) == m and not set(items) & set(c.history) and c.target not in items


def test_random_paths_stop_when_the_catalog_runs_out():
    case = Case(history=tuple(range(35)), target=39, case_id="x")  # 4 free items: 35..38
    paths, got = _draw([case], [10], [5])
    assert got.tolist() == [4] and sorted(paths[0, :4].tolist()) == [35, 36, 37, 38]


def test_random_paths_depend_only_on_their_key():
    """The same (case, key) gives the same path in any batch; other keys give other paths."""
    a, _ = _draw(CASES, [5, 5, 5], [11, 12, 13])
    b, _ = _draw([CASES[2], CASES[0]], [5, 5], [13, 11])
    assert torch.equal(a[0], b[1]) and torch.equal(a[2], b[0])
    c, _ = _draw(CASES[:1] * 8, [5] * 8, list(range(100, 108)))
    assert len({tuple(r) for r in c.tolist()}) == 8


def test_mix64_is_a_deterministic_bijection_sample():
    x = torch.arange(-1000, 1000)
    y = mix64(x)
    assert torch.equal(y, mix64(x)) and y.unique().numel() == x.numel()
    same = Case(history=CASES[0].history, target=CASES[0].target, case_id="another id")
    assert case_key(CASES[0]) == case_key(same) >= 0  # a case's content, not its id
    assert case_key(CASES[0]) != case_key(Case(history=CASES[0].history, target=8, case_id="u1"))


def test_lift_is_value_minus_the_mean_of_its_random_paths():
    model = _model()
    paths = [(11, 12, 13), (), (1, 2, 3, 4, 8)]
    sc = score_paths(model, CASES, paths)
    ctx = MetricContext(simulator=model, cases=CASES)
    spec = lift_metric("ioi-lift", "ioi")
    lift = spec.compute(sc, ctx)
    assert lift[1] == 0  # an empty path: no random path to compare with
    base = random_baseline("ioi", sc, ctx)
    assert torch.allclose(lift, ioi(sc) - base)
    # Rebuild case 0's R random paths of length 3 by hand and score them alone.
    hist, hist_len = histories_tensor([CASES[0]] * SAMPLES, N_ITEMS)
    key = mix64(torch.tensor([case_key(CASES[0])]) ^ mix64(torch.tensor([0])))  # seed 0
    row_keys = mix64(key + torch.tensor([3]) * _M1) + torch.arange(SAMPLES)
    rp, got = random_valid_paths(hist, hist_len, torch.full((SAMPLES,), 9), row_keys,
                                 torch.full((SAMPLES,), 3), N_ITEMS)
    alone = score_paths(model, hist=hist, hist_len=hist_len, targets=torch.full((SAMPLES,), 9),
                        path_tensor=rp, path_len=got)
    assert torch.allclose(base[0], ioi(alone).mean(), atol=1e-5)
    assert torch.allclose(lift[0], ioi(sc)[0] - ioi(alone).mean(), atol=1e-5)


def test_the_baseline_of_a_case_does_not_depend_on_its_batch():
    model = _model()
    spec = lift_metric("ior-lift", "ior")
    together = per_path_values(model, CASES, [(11, 12), (1, 2, 3), (2, 5)], [spec])["ior-lift"]
    alone = per_path_values(model, CASES[2:], [(2, 5)], [spec])["ior-lift"]
    assert abs(together[2] - alone[0]) < 1e-4
    other_seed = per_path_values(model, CASES[2:], [(2, 5)], [lift_metric("x", "ior", seed=1)])["x"]
    assert other_seed[0] != alone[0]


def test_random_paths_have_lift_near_zero_on_average():
    """Random valid paths drawn independently of the baseline's: the mean lift over many cases is
    ~0 (each case's baseline is a mean of R = 16 paths, so its error is ~std / 4 per case)."""
    model = _model()
    g = torch.Generator().manual_seed(1)
    cases, paths = [], []
    for u in range(40):
        perm = torch.randperm(N_ITEMS, generator=g).tolist()
        c = Case(history=tuple(perm[:6]), target=perm[6], case_id=f"r{u}")
        free = perm[7:]
        for _ in range(20):
            pick = torch.randperm(len(free), generator=g)[:4].tolist()
            cases.append(c)
            paths.append(tuple(free[i] for i in pick))
    v = per_path_values(model, cases, paths, [lift_metric("ioi-lift", "ioi")])
    spread = float(ioi(score_paths(model, cases, paths)).std())
    assert abs(v["ioi-lift"].mean()) < 3 * spread / 4 / 40 ** 0.5


def test_lift_metrics_are_registered_opt_in_and_reduce_at_k():
    reg = load_registry()
    assert not reg.metric("ioi-lift").default and not reg.metric("ior-lift").default
    assert "ioi-lift" not in reg.default_metrics() and "ioi" in reg.default_metrics()
    assert reg.metric("ioi-lift").needs_simulator and reg.metric("ioi-lift").higher_is_better
    df = evaluate_paths(_model(), CASES, [[(11,), (11, 12)], [], [(2, 5)]], [reg.metric("ioi-lift")], ks=(1, 2))
    assert set(df["metric"]) == {"ioi-lift"} and len(df) == 6
    by = df.set_index(["case", "k"])["value"]
    assert by[("u1", 2)] >= by[("u1", 1)] and by[("u2", 1)] == 0


class Counting(torch.nn.Module):
    """A simulator that records the rows of every encode call."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.n_items, self.max_seq_len = inner, inner.n_items, inner.max_seq_len
        self.calls: list[int] = []

    def encode(self, seqs, seq_len):
        self.calls.append(seqs.shape[0])
        return self.inner.encode(seqs, seq_len)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.inner, name)


SPECS = [lift_metric("ioi-lift", "ioi"), lift_metric("ior-lift", "ior")]
PATHS = [(11, 12), (1, 2, 3), (2, 5)]


def test_ioi_and_ior_lift_score_the_random_paths_once_per_batch():
    model = Counting(_model())
    per_path_values(model, CASES, PATHS, SPECS)
    assert model.calls == [3, 3 * SAMPLES]  # the paths, then one pass over the random paths for both


def test_the_means_are_kept_across_calls_in_the_cache_folder(tmp_path):
    model = Counting(_model())
    fresh = per_path_values(model, CASES, PATHS, SPECS)
    first = per_path_values(model, CASES, PATHS, SPECS, cache_dir=tmp_path, simulator_key="sim1")
    assert list((tmp_path / "lift").glob("sim1-r16-s0.pt"))
    model.calls.clear()
    again = per_path_values(model, CASES[::-1], PATHS[::-1], SPECS, cache_dir=tmp_path, simulator_key="sim1")
    assert model.calls == [3]  # only the paths themselves: every (case, length) mean came from the store
    for name in ("ioi-lift", "ior-lift"):
        assert abs(fresh[name] - first[name]).max() < 1e-5 and abs(first[name] - again[name][::-1]).max() < 1e-5
    model.calls.clear()
    per_path_values(model, CASES, [(11, 12, 13), (1, 2, 3), (2, 5)], SPECS, cache_dir=tmp_path, simulator_key="sim1")
    assert model.calls == [3, SAMPLES]  # one new (case, length) pair is scored and added
    model.calls.clear()
    per_path_values(model, CASES, PATHS, SPECS, cache_dir=tmp_path, simulator_key="sim2")
    assert model.calls == [3, 3 * SAMPLES]  # another simulator has its own store
    (tmp_path / "lift" / "sim1-r16-s0.pt").write_bytes(b"damaged")
    model.calls.clear()
    redo = per_path_values(model, CASES, PATHS, SPECS, cache_dir=tmp_path, simulator_key="sim1")
    assert model.calls == [3, 3 * SAMPLES] and abs(redo["ioi-lift"] - fresh["ioi-lift"]).max() < 1e-5
