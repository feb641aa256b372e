"""Taken-action log-probs in chunks (prorlbench.rl.taken) equal the plain full-softmax way bit
for bit: values and every parameter's gradient, whatever the chunking and the masks."""

import pytest
import torch

from prorlbench.rl.policy import PathPolicy
from prorlbench.rl.taken import ban_index, dense_ban_mask, taken_log_probs


def _batch(n_items=40, cases=6, repeat=4, p=5, hist=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    hist_left = torch.randint(0, n_items, (cases, hist), generator=g)
    hist_left[:2, :3] = n_items  # left padding
    target = torch.randint(0, n_items, (cases,), generator=g)
    n = cases * repeat
    paths = torch.randint(0, n_items, (n, p), generator=g)  # repeats and history items: banned actions
    lengths = torch.randint(0, p + 1, (n,), generator=g)
    paths = torch.where(torch.arange(p)[None] < lengths[:, None], paths, n_items)
    stopped = torch.rand(n, generator=g) < 0.6
    return hist_left, target, paths, lengths, stopped


def _grads(pol, fn, weights):
    pol.zero_grad(set_to_none=True)
    torch.manual_seed(11)  # the same dropout masks in both ways
    lp = fn()
    # a banned taken action has log pi = -inf: keep it out of the loss (as SFT does), so that
    # both ways' gradients are finite and comparable
    torch.where(torch.isfinite(lp), lp * weights, torch.zeros(())).sum().backward()
    return lp.detach(), {k: p.grad.clone() for k, p in pol.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("mask_invalid,mask_target", [(True, True), (True, False), (False, True), (False, False)])
def test_policy_taken_log_probs_equal_the_plain_way_bit_for_bit(mask_invalid, mask_target):
    torch.manual_seed(0)
    pol = PathPolicy(40, 5, 8, d_model=16, n_heads=2, mask_invalid=mask_invalid, mask_target=mask_target)
    hist_left, target, paths, lengths, stopped = _batch()
    weights = torch.randn(paths.shape)
    plain = _grads(pol, lambda: pol.action_log_probs(hist_left, target, paths, lengths, stopped, repeat=4,
                                                     full=True)[0], weights)
    fused = _grads(pol, lambda: pol.action_log_probs(hist_left, target, paths, lengths, stopped, repeat=4), weights)
    assert torch.equal(plain[0], fused[0])
    if mask_invalid:
        assert bool(torch.isinf(plain[0]).any())  # the batch does take banned actions
    assert plain[1].keys() == fused[1].keys()
    for k in plain[1]:
        assert torch.equal(plain[1][k], fused[1][k]), k


@pytest.mark.parametrize("chunk", [1, 3, 100])
def test_taken_log_probs_equal_gather_of_log_softmax_with_gradients(chunk):
    g = torch.Generator().manual_seed(1)
    n, p, v = 7, 4, 30
    hidden = torch.randn(n, p, 8, generator=g, requires_grad=True)
    weight = torch.randn(v + 1, 8, generator=g)[:v].requires_grad_()  # a slice, as the policy's
    bias = torch.randn(v, generator=g, requires_grad=True)
    stop = torch.randn(n, p, 1, generator=g, requires_grad=True)
    base = torch.randint(0, v + 3, (n, 5), generator=g)  # ids >= v mean nothing
    gen = torch.randint(0, v, (n, p - 1), generator=g)
    index = ban_index(base, gen, p, v)
    actions = torch.randint(0, v + 1, (n, p), generator=g)
    w = torch.randn(n, p, generator=g)
    inputs = (hidden, weight, bias, stop)

    def loss(lp):
        return torch.where(torch.isfinite(lp), lp * w, torch.zeros(())).sum()

    banned = dense_ban_mask(index, p, v + 1)
    items = torch.addmm(bias, hidden.reshape(-1, 8), weight.T).view(n, p, v)
    ref = torch.log_softmax(torch.cat([items, stop], -1).masked_fill(banned, float("-inf")), -1)
    ref = ref.gather(2, actions[..., None]).squeeze(2)
    plain = torch.autograd.grad(loss(ref), inputs)
    out = taken_log_probs(hidden, weight, bias, stop, actions, index, paths_per_chunk=chunk)
    fused = torch.autograd.grad(loss(out), inputs)
    assert torch.equal(ref, out)
    assert all(torch.equal(a, b) for a, b in zip(plain, fused))
    assert bool(banned[..., v].logical_not().all())  # STOP is never banned


def test_ban_index_bans_history_target_and_earlier_path_items():
    base = torch.tensor([[3, 9, 9]])  # 9 = STOP id: nothing
    gen = torch.tensor([[5, 6]])
    mask = dense_ban_mask(ban_index(base, gen, 3, 9), 3, 10)
    assert [set(torch.nonzero(mask[0, t]).flatten().tolist()) for t in range(3)] == [{3}, {3, 5}, {3, 5, 6}]
    assert ban_index(None, None, 3, 9) is None
