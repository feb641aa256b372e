"""Presentation settings of a run: the ``[display]`` table and how headers name a profile.

``[display]`` maps a method, metric or dataset name to the name tables and plots show::

    [display]
    prorl = "ProRL"
    sr10 = "Success@10"
    colors = {prorl = "#d62728", "prorl+k3" = "tab:green"}

``colors`` sets a method's plot colour (``#rrggbb`` or a colour name matplotlib knows), instead of
the one its name gives (:mod:`prorlbench.report.colors`). The runner stores the names and colours
in ``metadata.json`` (:meth:`prorlbench.engine.resolve.Resolved.metadata_document`) and the run folder's
``config.toml``, so ``prorlbench report`` shows them without the config file. In the parsed table
a colour is kept as the key ``colors.NAME`` (every value stays a string).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError, did_you_mean

PROFILE_NOTES = {
    "quick": "a small budget for a first look, minutes on a laptop; not for paper numbers",
    "paper": "the full budget of the paper's protocol",
}
"""How the summary header and ``--dry-run`` describe each profile."""


def profile_note(profile: str) -> str:
    """``quick (a small budget ...)``: how headers name a profile."""
    note = PROFILE_NOTES.get(profile)
    return f"{profile} ({note})" if note else profile


COLORS = "colors"
"""The ``[display]`` key of the colour table; its entries are kept as ``colors.NAME``."""


def _color(value: Any, where: str, name: str) -> str:
    """``#rrggbb`` of a colour matplotlib knows; anything else is a one-line error."""
    if isinstance(value, str) and value.strip():
        from matplotlib.colors import to_hex

        try:
            return to_hex(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"{where}.{COLORS} key '{name}': {value!r} is not a colour "
                      "(use '#rrggbb' or a matplotlib colour name such as 'tab:blue')")


def parse_display(table: Any, where: str, label: str) -> dict[str, str]:
    """Check a ``[display]`` table: every value a non-empty string, ``colors`` a table of
    colours (kept as ``colors.NAME = "#rrggbb"``)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{label}: 'display' must be a table ([display])")
    out: dict[str, str] = {}
    for key, value in table.items():
        if key == COLORS:
            if not isinstance(value, dict):
                raise ConfigError(f"{where} key '{COLORS}': expected a table of method = colour, got {value!r}")
            out.update({f"{COLORS}.{k}": _color(v, where, str(k)) for k, v in value.items()})
        elif str(key).startswith(COLORS + "."):   # a run folder's config.toml stores them flat
            out[str(key)] = _color(value, where, str(key)[len(COLORS) + 1:])
        elif not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where} key '{key}': expected a non-empty string (the name tables "
                              f"and plots show), got {value!r}")
        else:
            out[str(key)] = str(value)
    return out


def check_display(display: dict[str, str], names: list[str], where: str) -> None:
    """Every ``[display]`` key (and every ``colors`` key) names a method, metric or dataset of
    the registry."""
    for key in display:
        name = key[len(COLORS) + 1:] if key.startswith(COLORS + ".") else key
        if name not in names:
            raise ConfigError(f"{where}: unknown name '{name}'{did_you_mean(name, sorted(set(names)))}; "
                              "[display] names methods, metrics and datasets")
