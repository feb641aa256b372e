"""A tiny ground-truth-like world for RL tests: a preference-drift user model as a SequenceModel.

State after a sequence: ``u_t = decay * u_{t-1} + (1 - decay) * e_{s_t}``; next-item logits
``scale * u . e_i + pop_i``; accept logit ``accept_scale * u . e_i``. Cases: histories sampled
from the model, targets the items it ranks low given the history; reference paths sampled from
the model and ended with the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from prorlbench.api import Case, CaseSplits, FitContext, Interactions


class DriftModel(nn.Module):
    def __init__(self, n_items: int = 40, dim: int = 8, decay: float = 0.7, scale: float = 6.0,
                 accept_scale: float = 4.0, seed: int = 0, max_seq_len: int = 50):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        emb = torch.randn(n_items, dim, generator=g)
        self.emb = nn.Parameter(emb / emb.norm(dim=1, keepdim=True), requires_grad=False)
        self.pop = nn.Parameter(0.5 * torch.randn(n_items, generator=g), requires_grad=False)
        self.n_items, self.max_seq_len = n_items, max_seq_len
        self.decay, self.scale, self.accept_scale = decay, scale, accept_scale
        self.n_encode_calls = 0

    def encode(self, seqs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        self.n_encode_calls += 1
        e = torch.cat([self.emb, torch.zeros(1, self.emb.shape[1])])[seqs]  # pad -> 0
        out = torch.zeros_like(e)
        u = torch.zeros_like(e[:, 0])
        for t in range(seqs.shape[1]):
            u = self.decay * u + (1 - self.decay) * e[:, t]
            out[:, t] = u
        return out

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        return self.scale * states @ self.emb.T + self.pop

    def accept_logit(self, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.accept_scale * (states * self.emb[items]).sum(-1)

    def item_embeddings(self) -> torch.Tensor:
        return self.emb


def make_cases(model: DriftModel, n: int, seed: int, n_history: int = 6, ref_len: tuple[int, int] = (1, 4)) -> list[Case]:
    """Cases whose target is ranked in the bottom half after the history."""
    g = torch.Generator().manual_seed(seed)
    out: list[Case] = []
    while len(out) < n:
        seq: list[int] = [int(torch.randint(model.n_items, (1,), generator=g))]
        while len(seq) < n_history + ref_len[1]:
            st = model.encode(torch.tensor([seq]), torch.tensor([len(seq)]))[0, -1]
            p = torch.softmax(model.logits(st), -1)
            p[seq] = 0
            seq.append(int(torch.multinomial(p / p.sum(), 1, generator=g)))
        hist = tuple(seq[:n_history])
        st = model.encode(torch.tensor([hist]), torch.tensor([len(hist)]))[0, -1]
        lg = model.logits(st)
        order = lg.argsort(descending=True).tolist()
        used = set(seq)
        low = [i for i in order[model.n_items // 2:] if i not in used]
        if not low:
            continue
        target = low[int(torch.randint(len(low), (1,), generator=g))]
        m = int(torch.randint(ref_len[0], ref_len[1] + 1, (1,), generator=g))
        ref = tuple(seq[n_history : n_history + m]) + (target,)
        out.append(Case(history=hist, target=target, reference=ref, user=f"u{len(out)}", case_id=f"c{len(out)}"))
    return out


@dataclass
class ListLogger:
    rows: list[tuple[int, dict]] = field(default_factory=list)

    def log(self, step: int, **values: float) -> None:
        self.rows.append((step, values))

    def series(self, name: str) -> list[float]:
        return [v[name] for _, v in self.rows if name in v]


def make_ctx(tmp_path, n_items: int = 40, n_train: int = 48, n_valid: int = 16, n_test: int = 8,
             seed: int = 0, max_path_len: int = 4) -> FitContext:
    model = DriftModel(n_items=n_items).eval()
    cases = CaseSplits(train=make_cases(model, n_train, 1), valid=make_cases(model, n_valid, 2),
                       test=make_cases(model, n_test, 3))
    data = Interactions(name="fake", n_items=n_items, sequences={"train": [], "valid": [], "test": []})
    return FitContext(data=data, cases=cases, simulator=model, simulator_name="drift",
                      device=torch.device("cpu"), seed=seed, cache_dir=tmp_path, max_path_len=max_path_len,
                      logger=ListLogger(), progress=False)
