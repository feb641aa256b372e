"""``CaseTensors``: a list of cases as device tensors (histories both right- and left-padded)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..api import Case


# --------------------------------------------------------------------------------------------
# Cases as tensors
# --------------------------------------------------------------------------------------------


@dataclass
class CaseTensors:
    """A list of cases as device tensors (built once per fit / generate call)."""

    hist: torch.Tensor
    """``[N, H]`` right-padded histories (the layout :mod:`prorlbench.seq.scoring` uses)."""
    hist_len: torch.Tensor
    """``[N]``."""
    hist_left: torch.Tensor
    """``[N, H]`` the same histories left-padded (the layout the policy uses; the transformer reads
    the last ``max_history`` columns, the validity mask all of them)."""
    target: torch.Tensor
    """``[N]``."""

    def __len__(self) -> int:
        return self.target.shape[0]

    def index(self, idx: torch.Tensor) -> "CaseTensors":
        return CaseTensors(self.hist[idx], self.hist_len[idx], self.hist_left[idx], self.target[idx])

    def repeat(self, g: int) -> "CaseTensors":
        """Each case ``g`` times in a row (``[N] -> [N * g]``), for G samples per case."""
        return CaseTensors(*(x.repeat_interleave(g, 0) for x in
                             (self.hist, self.hist_len, self.hist_left, self.target)))

    @classmethod
    def from_cases(cls, cases: Sequence[Case], n_items: int, device: torch.device | str = "cpu") -> "CaseTensors":
        hists = [tuple(c.history) for c in cases]  # full: the simulator and the mask see all of H
        width = max([len(h) for h in hists] + [1])
        right = torch.full((len(cases), width), n_items, dtype=torch.long)
        left = torch.full((len(cases), width), n_items, dtype=torch.long)
        for r, h in enumerate(hists):
            if h:
                t = torch.tensor(h, dtype=torch.long)
                right[r, : len(h)] = t
                left[r, width - len(h):] = t
        lens = torch.tensor([len(h) for h in hists], dtype=torch.long)
        tgt = torch.tensor([c.target for c in cases], dtype=torch.long)
        return cls(right.to(device), lens.to(device), left.to(device), tgt.to(device))


