"""``compile_sampling`` (issue 26 item 2): the compiled sampler draws what the eager one draws.

On the CPU (where ``torch.compile`` works: it needs a C++ compiler) the compiled item and
semantic-ID samplers give the eager sampler's paths for a seed and leave the generator where it
leaves it, and a whole RL training with ``compile_sampling = true`` equals the eager one. On CUDA
(``mode="reduce-overhead"``, CUDA graphs) the sampled paths follow the policy's own distribution:
a chi-square test against the exact path probabilities of a toy policy. The compiler's first
call takes tens of seconds on a loaded CPU.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import pytest
import torch
from scipy import stats

from prorlbench.config import build_config
from prorlbench.rl import compiled
from prorlbench.rl.config import RLConfig
from prorlbench.rl.method import RLMethod
from prorlbench.rl.policies import build_policy, policy_codes
from prorlbench.rl.policy import CaseTensors, PathPolicy
from prorlbench_plugins.methods.rl_family import ESTIMATORS

from .fakes import make_ctx

SEM = {"sem_d_model": 16, "sem_enc_layers": 1, "sem_dec_layers": 1, "sem_d_ff": 32, "sem_heads": 2,
       "n_codebooks": 2, "codebook_size": 4, "max_history": 6}


@functools.cache
def compile_works() -> str:
    """'' when torch.compile runs here, else why not."""
    try:
        f = torch.compile(lambda x: torch.softmax(x, -1).cumsum(-1))
        f(torch.randn(2, 3))
        return ""
    except Exception as exc:  # no C++ compiler, unsupported Python, ...
        return f"torch.compile does not work on this machine: {type(exc).__name__}: {exc}"[:300]


def needs_compile():
    if compile_works():
        pytest.skip(compile_works())


def semantic_world(tmp_path, decoding: str):
    ctx = make_ctx(tmp_path, n_train=12, n_valid=4, n_test=2)
    seqs = [c.history + c.reference for c in ctx.cases.train]
    ctx.data = dataclasses.replace(ctx.data, sequences={"train": seqs, "valid": [], "test": []})
    cfg = build_config(RLConfig, {**SEM, "policy": "semantic-id", "decoding": decoding})
    torch.manual_seed(0)
    pol = build_policy(cfg, 40, 4, policy_codes(cfg, ctx.data, tmp_path)).eval()
    return pol, CaseTensors.from_cases(ctx.cases.train[:6], 40)


@pytest.mark.parametrize("kind", ["item", "item top-k", "semantic constrained", "semantic free"])
def test_compiled_sampler_gives_the_eager_paths_on_cpu(tmp_path, kind):
    needs_compile()
    if kind.startswith("item"):
        torch.manual_seed(0)
        pol = PathPolicy(30, 4, max_history=6, d_model=16, n_layers=2, n_heads=2, dropout=0.0).eval()
        g = torch.Generator().manual_seed(1)
        hist = torch.stack([torch.randperm(30, generator=g)[:6] for _ in range(6)])
        hist[0, :2] = 30  # a shorter history
        ct = CaseTensors(hist, torch.full((6,), 6), hist, torch.randint(30, (6,), generator=g))
    else:
        pol, ct = semantic_world(tmp_path, kind.split()[1])
    kw = {"top_k": 5, "temperature": 1.3} if kind.endswith("top-k") else {}
    g_eager, g_comp = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    eager = pol.sample(ct.hist_left, ct.target, g_eager, repeat=8, max_len=4, **kw)
    comp = compiled.sample(pol, ct.hist_left, ct.target, g_comp, repeat=8, max_len=4, **kw)
    for a, b in zip(eager, comp):
        assert torch.equal(a, b)
    assert torch.equal(g_eager.get_state(), g_comp.get_state())  # the same random numbers consumed
    assert eager[1].float().mean() > 0.5  # paths with items, not all empty


def test_a_training_with_compiled_sampling_equals_the_eager_one_on_cpu(tmp_path):
    needs_compile()
    est = next(s for s in ESTIMATORS if s.name == "prorl")
    tiny = {"d_model": 16, "n_layers": 1, "samples_per_case": 4, "batch_cases": 6, "epochs": 2,
            "max_train_cases": 12, "sft_epochs": 1, "n_valid_cases": 4, "max_history": 6, "sample_top_k": 8}
    runs = []
    for comp in (False, True):
        ctx = make_ctx(tmp_path / str(comp), n_train=12, n_valid=4, n_test=4)
        m = RLMethod(build_config(RLConfig, {**tiny, "compile_sampling": comp}), est)
        torch.manual_seed(0)
        m.fit(ctx)
        runs.append((ctx.logger.rows, [v.clone() for v in m.policy.state_dict().values()],
                     m.generate(ctx.cases.test, 3)))
    assert runs[0][0] == runs[1][0]  # every logged value
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    assert runs[0][2] == runs[1][2]


def exact_path_probs(pol: PathPolicy, hist: torch.Tensor, target: torch.Tensor, p: int) -> dict[tuple, float]:
    """The probability of every path of at most ``p`` items (teacher forcing, the validity mask)."""
    v = pol.n_items
    out = {}
    for m in range(p + 1):
        for items in itertools.permutations([i for i in range(v) if i not in hist.tolist() and i != int(target)], m):
            paths = torch.full((1, p), v, dtype=torch.long, device=hist.device)
            paths[0, :m] = torch.tensor(items, dtype=torch.long)
            lengths = torch.tensor([m], device=hist.device)
            stopped = lengths < p
            with torch.no_grad():
                lp = pol.action_log_probs(hist[None], target[None], paths, lengths, stopped).sum()
            out[items] = float(lp.exp())
    return out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (mode='reduce-overhead': CUDA graphs)")
@pytest.mark.parametrize("top_k", [0, 3])
def test_compiled_sampler_draws_the_policy_distribution_on_cuda(top_k):
    torch.manual_seed(1)
    pol = PathPolicy(6, 2, max_history=3, d_model=16, n_layers=1, n_heads=2, dropout=0.0).cuda().eval()
    with torch.no_grad():
        pol.item_bias.copy_(torch.linspace(-1.0, 1.0, 6))
        pol.stop_head.bias.fill_(-0.5)
    hist, target = torch.tensor([0, 6, 6], device="cuda"), torch.tensor(1, device="cuda")
    n = 40000
    paths, lengths, _ = compiled.sample(pol, hist[None], target[None], torch.Generator("cuda").manual_seed(5),
                                        repeat=n, max_len=2, top_k=top_k)
    seen: dict[tuple, int] = {}
    for row, m in zip(paths.tolist(), lengths.tolist()):
        seen[tuple(row[:m])] = seen.get(tuple(row[:m]), 0) + 1
    if top_k:  # the reference: the eager sampler's own frequencies (top-k renormalises each step)
        e_paths, e_len, _ = pol.sample(hist[None], target[None], torch.Generator("cuda").manual_seed(6),
                                       repeat=n, max_len=2, top_k=top_k)
        ref: dict[tuple, int] = {}
        for row, m in zip(e_paths.tolist(), e_len.tolist()):
            ref[tuple(row[:m])] = ref.get(tuple(row[:m]), 0) + 1
        keys = sorted(set(seen) | set(ref))
        table = [[seen.get(k, 0) for k in keys], [ref.get(k, 0) for k in keys]]
        assert stats.chi2_contingency(table).pvalue > 1e-3
        return
    probs = exact_path_probs(pol, hist, target, 2)
    assert abs(sum(probs.values()) - 1) < 1e-4 and set(seen) <= set(probs)
    keys = sorted(probs)
    expect = [probs[k] * n for k in keys]
    chi = stats.chisquare([seen.get(k, 0) for k in keys], [e * n / sum(expect) for e in expect])
    assert chi.pvalue > 1e-3, chi


def test_a_compiler_failure_is_one_line_naming_the_key(monkeypatch):
    from torch._dynamo.exc import BackendCompilerFailed

    from prorlbench.errors import ConfigError

    def broken(*args, **kwargs):
        raise BackendCompilerFailed(lambda g, i: None, RuntimeError("no C++ compiler found"), None)

    monkeypatch.setattr(compiled, "compiled_steps", lambda device_type: dict.fromkeys(compiled.STEPS, broken))
    torch.manual_seed(0)
    pol = PathPolicy(10, 3, max_history=4, d_model=8, n_layers=1, n_heads=2, dropout=0.0).eval()
    with pytest.raises(ConfigError, match=r"compile_sampling = true: torch.compile failed here .*no C\+\+ "
                                          r"compiler found.*set compile_sampling = false") as err:
        compiled.sample(pol, torch.full((2, 4), 10), torch.tensor([1, 2]), None, repeat=2)
    assert "\n" not in str(err.value)

