"""The ``semantic-id`` policy: codes, KV cache, log-probabilities, constrained/free decoding, beam."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prorlbench.rl.semantic_decoding import allowed_tokens_teacher_forced
from prorlbench.rl.semantic_ids import SemanticIds, build_codes, disambiguate, rq_kmeans
from prorlbench.rl.semantic_rewards import official_free_rewards
from prorlbench.rl.seq2seq_policy import SemanticIdPolicy

from .fakes import DriftModel

ML1M = Path(__file__).resolve().parents[3] / "shared" / "data" / "prorl-ml-1m"

CODES = [[0, 0, 0], [0, 1, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1], [2, 0, 0]]


def small_policy(decoding="constrained", token_logprob="mean", seed=0, codes=CODES, max_len=3):
    torch.manual_seed(seed)
    sem = SemanticIds.from_codes(codes)
    return SemanticIdPolicy(sem, max_len, 4, d_model=16, n_enc_layers=1, n_dec_layers=2, d_ff=32, n_heads=2,
                            dropout=0.0, decoding=decoding, token_logprob=token_logprob).eval()


# -- codes ------------------------------------------------------------------------------------


@pytest.mark.skipif(not ML1M.is_dir(), reason="../shared/data/prorl-ml-1m is absent")
def test_prorl_codes_round_trip_and_are_unique():
    from prorlbench_plugins.datasets.prorl_json import ProrlJsonConfig, load

    data = load(ProrlJsonConfig(), ML1M)
    assert data.item_codes is not None and len(data.item_codes) == data.n_items == 3043
    sem = SemanticIds.from_codes(data.item_codes)
    assert sem.n_digits == 4 and sem.sizes[:3] == (256, 256, 256)
    pol = SemanticIdPolicy(sem, 2, 2, d_model=8, n_enc_layers=1, n_dec_layers=1, d_ff=8, n_heads=1)
    items = torch.arange(data.n_items)
    assert torch.equal(pol.items_of(pol.tokens_of(items)), items)  # item -> tokens -> item
    assert len(set(data.item_codes)) == data.n_items
    assert sem.item_of(data.item_codes[17]) == 17


def test_rq_kmeans_codes_are_deterministic_unique_and_cached(tmp_path):
    rng = np.random.default_rng(0)
    seqs = [tuple(rng.choice(60, size=12, replace=False).tolist()) for _ in range(80)]
    attrs = tuple(frozenset({i % 5}) for i in range(60))
    a = build_codes(seqs, 60, attrs, n_codebooks=3, codebook_size=8, seed=3)
    b = build_codes(seqs, 60, attrs, n_codebooks=3, codebook_size=8, seed=3)
    c = build_codes(seqs, 60, attrs, n_codebooks=3, codebook_size=8, seed=4)
    assert torch.equal(a.codes, b.codes)
    assert not torch.equal(a.codes, c.codes)
    assert a.n_digits == 4 and max(a.sizes[:3]) <= 8
    assert torch.unique(a.codes, dim=0).shape[0] == 60  # every code is one item
    assert all(a.item_of(a.codes[i].tolist()) == i for i in range(60))
    cached = build_codes(seqs, 60, attrs, n_codebooks=3, codebook_size=8, seed=3, cache_dir=tmp_path)
    files = list((tmp_path / "semantic_ids").glob("*.json"))
    assert len(files) == 1 and torch.equal(cached.codes, a.codes)
    files[0].write_text("{broken")
    again = build_codes(seqs, 60, attrs, n_codebooks=3, codebook_size=8, seed=3, cache_dir=tmp_path)
    assert torch.equal(again.codes, a.codes)


def test_small_catalogs_cap_the_codebook_and_disambiguate():
    vec = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    codes = rq_kmeans(vec, n_codebooks=2, codebook_size=256, seed=0)
    assert codes.max() <= 1  # at most as many centroids as distinct rows
    full = disambiguate(codes)
    assert full[:, -1].tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="unique"):
        SemanticIds.from_codes(codes)


# -- network: KV cache, log-probabilities -----------------------------------------------------------


def test_cached_decoding_equals_teacher_forcing():
    pol = small_policy()
    hist, tgt = torch.tensor([[6, 6, 0, 1], [6, 2, 3, 4]]), torch.tensor([5, 0])
    toks = torch.tensor([[4, 6, 7, 1, 3, 7], [5, 3, 7, 8, 0, 0]])
    cache = pol.encode(hist, tgt)
    full, _ = pol.decode(cache, torch.cat([torch.zeros(2, 1, dtype=torch.long), toks[:, :-1]], 1))
    step, c = pol.decode(cache, torch.zeros(2, 1, dtype=torch.long))
    outs = [step[:, 0]]
    for s in range(toks.shape[1] - 1):
        step, c = pol.decode(c, toks[:, s : s + 1])
        outs.append(step[:, 0])
    torch.testing.assert_close(torch.stack(outs, 1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("decoding", ["constrained", "free"])
def test_mean_and_sum_item_log_probs_by_hand_on_a_two_item_path(decoding):
    mean, summ = small_policy(decoding, "mean"), small_policy(decoding, "sum")
    summ.load_state_dict(mean.state_dict())
    hist, tgt = torch.tensor([[6, 6, 0, 1]]), torch.tensor([5])
    paths, lengths, stopped = torch.tensor([[3, 2, 6]]), torch.tensor([2]), torch.tensor([True])
    # by hand: step the decoder token by token, mask, log-softmax, read the taken token
    toks = mean.tokens_of(torch.tensor([3, 2])).reshape(-1).tolist() + [mean.eos]
    banned = {0, 1, 5} if decoding == "constrained" else set()
    cache = mean.encode(hist, tgt)
    logits, cache = mean.decode(cache, torch.zeros(1, 1, dtype=torch.long))
    lps, prefix = [], []
    for s, tok in enumerate(toks):
        d = s % 3
        if decoding == "constrained":
            live = [i for i, c in enumerate(CODES) if i not in banned and c[:d] == prefix]
            ok = {int(mean.item_tok[i, d]) for i in live} | ({mean.eos} if d == 0 else set())
        else:
            ok = set(range(1, mean.eos)) | ({mean.eos} if d == 0 else set())
        mask = torch.full((mean.vocab,), float("-inf"))
        mask[sorted(ok)] = 0.0
        lps.append(float(torch.log_softmax(logits[0, -1] + mask, -1)[tok]))
        prefix = prefix + [CODES[[3, 2][s // 3]][d]] if s < 6 else prefix
        if d == 2:
            if decoding == "constrained":
                banned.add([3, 2][s // 3])
            prefix = []
        logits, cache = mean.decode(cache, torch.tensor([[tok]]))
    got_mean = mean.action_log_probs(hist, tgt, paths, lengths, stopped)[0]
    got_sum = summ.action_log_probs(hist, tgt, paths, lengths, stopped)[0]
    want_mean = [np.mean(lps[0:3]), np.mean(lps[3:6]), lps[6]]
    want_sum = [np.sum(lps[0:3]), np.sum(lps[3:6]), lps[6]]
    torch.testing.assert_close(got_mean, torch.tensor(want_mean, dtype=torch.float32), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_sum, torch.tensor(want_sum, dtype=torch.float32), atol=1e-5, rtol=1e-5)


# -- decoding ---------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_hist=st.integers(0, 4), greedy=st.booleans(), top_k=st.sampled_from([0, 2]))
def test_constrained_decoding_never_emits_an_invalid_or_masked_item(seed, n_hist, greedy, top_k):
    pol = small_policy(seed=seed)
    g = torch.Generator().manual_seed(seed)
    n_items = len(CODES)
    hists, tgts = [], []
    for _ in range(4):
        perm = torch.randperm(n_items, generator=g).tolist()
        hists.append([n_items] * (4 - n_hist) + perm[:n_hist])
        tgts.append(perm[n_hist])
    hist, tgt = torch.tensor(hists), torch.tensor(tgts)
    with torch.no_grad():
        for name, (paths, lengths, _s, *rest) in {
            "sample": pol.sample(hist, tgt, g, greedy=greedy, repeat=3, top_k=top_k, temperature=2.0),
            "beam": pol.beam_search(hist, tgt, 4, width=4),
        }.items():
            reps = paths.shape[0] // 4
            for r in range(paths.shape[0]):
                items = paths[r, : lengths[r]].tolist()
                case = r // reps
                assert all(0 <= i < n_items for i in items), (name, items)
                assert len(set(items)) == len(items), (name, items)
                assert not set(items) & (set(hists[case]) | {tgts[case]}), (name, items, hists[case])
                assert all(i == n_items for i in paths[r, lengths[r]:].tolist())


def test_free_decoding_can_emit_invalid_codes_that_round_trip():
    pol = small_policy("free")
    g = torch.Generator().manual_seed(0)
    hist, tgt = torch.tensor([[6, 6, 0, 1]] * 8), torch.tensor([5] * 8)
    paths, lengths, stopped = pol.sample(hist, tgt, g, repeat=4, temperature=3.0)
    t = torch.arange(paths.shape[1])[None]
    assert bool(((paths < 0) & (t < lengths[:, None])).any())  # some code matches no item
    toks = pol.tokens_of(paths.clamp(max=pol.n_items))
    assert torch.equal(pol.items_of(toks)[t.expand_as(paths) < lengths[:, None]],
                       paths[t.expand_as(paths) < lengths[:, None]])
    lp = pol.action_log_probs(hist[:8], tgt[:8], paths, lengths, stopped, repeat=4)
    assert bool(torch.isfinite(lp).all())


def _brute_force(pol, hist, tgt, max_len):
    """Every valid path (items not in H, not repeated, not the target), scored by teacher forcing."""
    n_items = pol.n_items
    free = [i for i in range(n_items) if i not in set(hist.tolist()) | {int(tgt)}]
    paths = [()]
    for m in range(1, max_len + 1):
        paths += list(itertools.permutations(free, m))
    pt = torch.full((len(paths), max_len), n_items, dtype=torch.long)
    for r, p in enumerate(paths):
        pt[r, : len(p)] = torch.tensor(p, dtype=torch.long)
    lengths = torch.tensor([len(p) for p in paths])
    stopped = lengths < max_len
    with torch.no_grad():
        lp = pol.action_log_probs(hist[None].expand(len(paths), -1), tgt.expand(len(paths)), pt, lengths, stopped)
    return paths, lp.sum(1)


@pytest.mark.parametrize("token_logprob", ["mean", "sum"])
def test_beam_search_equals_brute_force_on_a_tiny_catalog(token_logprob):
    pol = small_policy(token_logprob=token_logprob, seed=3, max_len=2)
    hist, tgt = torch.tensor([6, 6, 6, 1]), torch.tensor(5)
    paths, scores = _brute_force(pol, hist, tgt, 2)
    order = scores.argsort(descending=True)
    k = 5
    bp, bl, bs, bscore = pol.beam_search(hist[None], tgt[None], k, width=len(paths), max_len=2)
    got = [tuple(bp[r, : bl[r]].tolist()) for r in range(k)]
    want = [paths[i] for i in order[:k].tolist()]
    assert got == want
    torch.testing.assert_close(bscore[0], scores[order[:k]], atol=1e-5, rtol=1e-5)
    assert bs.tolist() == [len(p) < 2 for p in got]


def test_teacher_forced_masks_match_the_sampling_masks():
    pol = small_policy()
    hist, tgt = torch.tensor([[6, 6, 0, 1]]), torch.tensor([5])
    paths, lengths, stopped = pol.sample(hist, tgt, torch.Generator().manual_seed(1), repeat=6)
    toks = pol.path_tokens(paths, lengths, stopped)
    allow = allowed_tokens_teacher_forced(pol, hist, tgt, toks, repeat=6)
    real = toks != 0
    assert bool(allow.gather(2, toks[..., None]).squeeze(2)[real].all())  # every sampled token was allowed


# -- free decoding: the official penalties ----------------------------------------------------------


def test_free_decoding_penalties_follow_the_official_rule():
    sim = DriftModel(n_items=10, seed=1).eval()
    hist, hist_len = torch.tensor([[0, 1, 10], [2, 10, 10]]), torch.tensor([2, 1])
    tgt = torch.tensor([7, 8])
    # row 0: item 3, an invalid code, item 4, item 3 again; row 1: item 5, then stop
    paths = torch.tensor([[3, -12345, 4, 3], [5, 10, 10, 10]])
    lengths = torch.tensor([4, 1])
    raw, stats, credit = official_free_rewards(sim, hist, hist_len, tgt, paths, lengths)

    def state_stats(seq, target):
        s = sim.encode(torch.tensor([seq]), torch.tensor([len(seq)]))[0, -1]
        lg = sim.logits(s)
        return float(torch.log_softmax(lg, -1)[target]), float((lg > lg[target]).sum() + 1), s

    def step(before, item, target):
        lp0, r0, s0 = state_stats(before, target)
        lp1, r1, _ = state_stats(before + [item], target)
        return lp1 - lp0, r0 - r1, float(torch.sigmoid(4.0 * (s0 * sim.emb[item]).sum()))

    # the invalid code is left out of the state: item 4 is scored after [0, 1, 3]
    s00, s02, s03 = step([0, 1], 3, 7), step([0, 1, 3], 4, 7), step([0, 1, 3, 4], 3, 7)
    s10 = step([2], 5, 8)
    real_ioi = [s00[0], s02[0], s10[0]]
    real_ior = [s00[1], s02[1], s10[1]]
    want_ioi = [[s00[0], min(real_ioi) - 1, s02[0], s03[0]], [s10[0], 0, 0, 0]]
    want_ior = [[s00[1], min(real_ior) - 1, s02[1], s03[1]], [s10[1], 0, 0, 0]]
    want_ctr = [[s00[2], -1.0, s02[2], 0.0], [s10[2], 0, 0, 0]]  # repeated item: CTR 0
    torch.testing.assert_close(raw["ioi"], torch.tensor(want_ioi), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(raw["ior"], torch.tensor(want_ior), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(raw["ctr"], torch.tensor(want_ctr), atol=1e-4, rtol=1e-4)
    assert stats.tolist() == [[True, False, True, False], [True, False, False, False]]
    assert credit.tolist() == [[True] * 4, [True, False, False, False]]
