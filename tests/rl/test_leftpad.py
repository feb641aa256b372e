"""``reward_state = 'official-leftpad'`` against a hand-built RecBole-style forward pass."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from prorlbench.rl.rewards import leftpad_scores, leftpad_states, path_rewards
from prorlbench_plugins.simulators.sasrec import SASRec, SASRecConfig


def tiny_sasrec(n_items=9, window=6):
    torch.manual_seed(0)
    cfg = SASRecConfig(hidden=8, n_layers=2, n_heads=2, inner=16, dropout=0.0, max_seq_len=window, init_std=0.3)
    return SASRec(cfg, n_items).eval()


def recbole_state(m: SASRec, seq: list[int]) -> torch.Tensor:
    """RecBole's SASRec on ONE left-padded sequence, written out by hand: additive mask built
    from ``item_seq != pad`` and ``tril``, 0 / -10000, output gathered at ``len(seq) - 1``."""
    w, pad = m.max_seq_len, m.n_items
    seq = seq[-w:]
    ids = torch.tensor([pad] * (w - len(seq)) + seq)
    x = m.item_emb.weight[ids] + m.pos_emb.weight[torch.arange(w)]
    x = m.ln(x)
    allowed = torch.tril((ids != pad)[None, :].expand(w, w))
    ext = torch.where(allowed, 0.0, -10000.0)
    for blk in m.blocks:
        d = x.shape[-1]
        h = blk.n_heads
        q, k, v = blk.qkv(x).view(w, 3, h, d // h).permute(1, 2, 0, 3)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // h) + ext, -1) @ v  # [h, w, dh]
        x = blk.ln1(x + blk.out(att.transpose(0, 1).reshape(w, d)))
        x = blk.ln2(x + blk.ff2(F.gelu(blk.ff1(x))))
    return x[len(seq) - 1]


def test_leftpad_states_equal_a_hand_built_recbole_forward():
    m = tiny_sasrec()
    seqs = [[1, 2], [3, 4, 5, 6], [0, 1, 2, 3, 4, 5, 6, 7]]  # short, shorter than W, longer than W
    right = torch.full((3, 8), m.n_items)
    for r, s in enumerate(seqs):
        right[r, : len(s)] = torch.tensor(s)
    with torch.no_grad():
        got = leftpad_states(m, right, torch.tensor([len(s) for s in seqs]))
        want = torch.stack([recbole_state(m, s) for s in seqs])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_leftpad_scores_read_each_prefix_and_differ_from_the_causal_state():
    m = tiny_sasrec()
    hist, hist_len = torch.tensor([[1, 2, m.n_items]]), torch.tensor([2])
    paths, lengths = torch.tensor([[3, 4, m.n_items]]), torch.tensor([2])
    target = torch.tensor([7])
    with torch.no_grad():
        sc = leftpad_scores(m, hist, hist_len, target, paths, lengths)
        prefixes = [[1, 2], [1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4]]  # S_0..S_2, then S_2 repeated
        want = torch.stack([torch.log_softmax(m.logits(recbole_state(m, p)), -1)[7] for p in prefixes])
        torch.testing.assert_close(sc.log_p[0], want, atol=1e-5, rtol=1e-5)
        acc = torch.sigmoid(m.accept_logit(recbole_state(m, [1, 2]), torch.tensor(3)))
        torch.testing.assert_close(sc.accept[0, 0], acc, atol=1e-5, rtol=1e-5)
        raw_l, valid_l, _ = path_rewards(m, hist, hist_len, target, paths, lengths, state="official-leftpad")
        raw_c, valid_c, _ = path_rewards(m, hist, hist_len, target, paths, lengths, state="causal")
    assert torch.equal(valid_l, valid_c)
    assert not torch.allclose(raw_l["ioi"], raw_c["ioi"])  # the padding-slot state is another state
