"""Presentation settings of a run: the ``[display]`` table and how headers name a profile.

``[display]`` maps a method, metric or dataset name to the name tables and plots show::

    [display]
    prorl = "ProRL"
    sr10 = "Success@10"

The runner stores the result in ``metadata.json`` (:meth:`prorlbench.resolve.Resolved.metadata_document`),
so ``prorlbench report`` shows the same names without the config file.
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigError, did_you_mean

PROFILE_NOTES = {
    "quick": "a small budget for a first look, minutes on a laptop; not for paper numbers",
    "paper": "the full budget of the paper's protocol",
}
"""How the summary header and ``--dry-run`` describe each profile."""


def profile_note(profile: str) -> str:
    """``quick (a small budget ...)``: how headers name a profile."""
    note = PROFILE_NOTES.get(profile)
    return f"{profile} ({note})" if note else profile


def parse_display(table: Any, where: str, label: str) -> dict[str, str]:
    """Check a ``[display]`` table: every value a non-empty string."""
    if not isinstance(table, dict):
        raise ConfigError(f"{label}: 'display' must be a table ([display])")
    for key, value in table.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where} key '{key}': expected a non-empty string (the name tables "
                              f"and plots show), got {value!r}")
    return {str(k): str(v) for k, v in table.items()}


def check_display(display: dict[str, str], names: list[str], where: str) -> None:
    """Every ``[display]`` key names a method, metric or dataset of the registry."""
    for key in display:
        if key not in names:
            raise ConfigError(f"{where}: unknown name '{key}'{did_you_mean(key, sorted(set(names)))}; "
                              "[display] names methods, metrics and datasets")
