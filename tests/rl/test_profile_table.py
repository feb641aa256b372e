"""docs/rl.md's profile table is RLConfig's profiles: every key a profile sets is a row, and every
row's quick / paper / official values are what ``build_config`` resolves (issue 24: ``official``
is the released code's keys, ``select = "last"`` included)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from prorlbench.config import build_config
from prorlbench.rl.config import RLConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "rl.md"
PROFILES = ("quick", "paper", "official")


def doc_rows() -> dict[str, tuple[str, str, str]]:
    """key -> (quick, paper, official) as written in the table under '## Configuration'."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Configuration (`RLConfig`)"):text.index("## Protocol switches")]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"\|\s*`(\w+)`\s*\|([^|]*)\|([^|]*)\|([^|]*)\|", line)
        if m:
            rows[m.group(1)] = tuple(v.strip() for v in m.group(2, 3, 4))
    return rows


def parse(text: str, like: object) -> object:
    if isinstance(like, bool):
        return {"true": True, "false": False}[text.lower()]
    if isinstance(like, (int, float)) and not isinstance(like, bool):
        return type(like)(float(text)) if isinstance(like, float) else int(text)
    return text


def test_every_profile_key_has_a_row() -> None:
    rows = doc_rows()
    keys = set().union(*(set(p) for p in RLConfig.PROFILES.values())) - {"per_dataset"}
    assert keys <= set(rows), f"profile keys missing from docs/rl.md: {sorted(keys - set(rows))}"


@pytest.mark.parametrize("profile", PROFILES)
def test_table_values_are_the_resolved_profile(profile: str) -> None:
    cfg = build_config(RLConfig, {}, profile=profile)
    col = PROFILES.index(profile)
    rows = doc_rows()
    assert len(rows) >= 25
    for key, values in rows.items():
        actual = getattr(cfg, key)
        assert parse(values[col], actual) == actual, f"docs/rl.md {key} [{profile}]: {values[col]} != {actual!r}"


def test_official_is_the_released_code() -> None:
    """The values the released scripts use, read from its scripts (docs/rl.md's audit); the last
    epoch is kept, as the released trainer does."""
    cfg = build_config(RLConfig, {}, profile="official")
    released = {"samples_per_case": 16, "batch_cases": 512, "epochs": 50, "lr": 1e-4, "warmup_frac": 0.05,
                "weight_decay": 0.05, "beta": 0.01, "gamma": 1.0, "grad_clip": 1.0, "select": "last",
                "kl": "k1", "decode": "greedy", "sample_top_k": 50, "empty_paths": "skip",
                "token_logprob": "mean", "decoding": "free", "sft_weight_decay": 0.05, "normalizer_epochs": 1}
    assert {k: getattr(cfg, k) for k in released} == released
    steam = cfg.for_dataset("prorl-Steam")
    assert (steam.lr, steam.w_ctr) == (1e-5, 0.1)


def test_speed_keys_at_their_defaults_leave_the_cell_fingerprint():
    """checkpoint_every, compile_sampling and autocast came after cells were stored: at their
    defaults they are not hashed, so those cells stay valid; set, they are (autocast changes numbers)."""
    import dataclasses

    from prorlbench.config import fingerprint_dict, to_dict

    cfg = build_config(RLConfig, {}, profile="quick")
    fp = fingerprint_dict(cfg)
    assert set(to_dict(cfg)) - set(fp) == {"checkpoint_every", "compile_sampling", "autocast"}
    assert fingerprint_dict(dataclasses.replace(cfg, autocast="bf16"))["autocast"] == "bf16"
    assert fingerprint_dict(dataclasses.replace(cfg, compile_sampling=True))["compile_sampling"] is True
