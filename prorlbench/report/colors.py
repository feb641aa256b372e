"""One look per method, in every figure of every run: colour, marker, line style, bar hatch.

The colour is a pure function of the method's name: the shipped methods have fixed colours
(:data:`KNOWN`: ``prorl`` blue, ``naive-pg`` orange, the placebo ``noise-pg`` black, ...), any
other name (a plugin, a variant such as ``prorl+k3``) takes a colour of :data:`HASHED` chosen by
a stable hash of the name (SHA-256, not Python's salted ``hash``). ``[display] colors`` in a run's
config overrides it (``prorl = "#d62728"``; any colour matplotlib knows, stored as ``#rrggbb``).
So a method looks the same in two runs whatever the grid's order.

Markers tell methods apart where colours cannot: in a figure of more than
:data:`MARKER_THRESHOLD` methods, or where two methods share a colour, every method also gets a
marker (bars: a hatch) and a line style, and no two methods share colour and marker. The marker
starts from a hash of the name and moves to the next free one only on a clash, so it is stable
for a given set of methods.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Mapping

KNOWN = {
    "prorl": "#1f77b4", "naive-pg": "#ff7f0e", "grpo": "#2ca02c", "rloo": "#d62728",
    "prorl-no-centering": "#9467bd", "prorl-no-positional-baseline": "#8c564b", "sft": "#e377c2",
    "noise-pg": "#000000", "random": "#7f7f7f", "pop": "#bcbd22", "rec2inf": "#17becf",
    "ipg": "#393b79", "irn": "#637939", "shortest-path": "#8c6d31",
}
"""Fixed colours of the shipped methods (matplotlib's tab10, black for the placebo, then dark
tones of tab20b)."""

HASHED = ("#3182bd", "#e6550d", "#31a354", "#756bb1", "#d6616b", "#ce6dbd", "#17a2a2", "#a55194",
          "#bd9e39", "#843c39", "#5254a3", "#8ca252", "#e7969c", "#636363", "#fd8d3c", "#6baed6")
"""Colours for other method names, picked by a hash of the name."""

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p")
LINESTYLES = ("-", "--", "-.", ":")
HATCHES = ("", "//", "\\\\", "xx", "..", "o", "++", "--", "||", "*", "O", "./")
"""Bar hatches, one per marker (same index)."""

MARKER_THRESHOLD = 10
"""Figures with more methods than this mark every method with a marker and line style too."""

COLORS_PREFIX = "colors."
"""``[display] colors`` entries are kept in the flat ``[display]`` mapping as ``colors.NAME``."""


def _hash(name: str, salt: str) -> int:
    return int(hashlib.sha256(f"{salt}:{name}".encode()).hexdigest()[:8], 16)


def method_color(name: str, overrides: Mapping[str, str] | None = None) -> str:
    """The colour of method ``name`` (``#rrggbb``): ``overrides``, else :data:`KNOWN`, else a
    hash of the name into :data:`HASHED`."""
    if overrides and name in overrides:
        return overrides[name]
    return KNOWN.get(name) or HASHED[_hash(name, "color") % len(HASHED)]


def display_colors(display: Mapping[str, object] | None) -> dict[str, str]:
    """The ``[display] colors`` overrides of a ``[display]`` table: nested (``colors = {..}``, as
    written in a config file) or flat (``"colors.NAME" = ..``, as a run folder stores it)."""
    out: dict[str, str] = {}
    for key, value in (display or {}).items():
        if key == "colors" and isinstance(value, Mapping):
            out.update({str(k): str(v) for k, v in value.items()})
        elif isinstance(key, str) and key.startswith(COLORS_PREFIX) and isinstance(value, str):
            out[key[len(COLORS_PREFIX):]] = value
    return out


def method_colors(methods: Iterable[str], stored: Mapping[str, str] | None = None, *,
                  display: Mapping[str, object] | None = None) -> dict[str, str]:
    """``{method: colour}`` (:func:`method_color`); ``stored`` and ``display``'s colours
    override (``display`` wins)."""
    overrides = dict(stored or {}) | display_colors(display)
    return {m: method_color(m, overrides) for m in methods}


@dataclass(frozen=True)
class MethodStyle:
    """How one method is drawn."""

    color: str
    marker: str | None = None
    """``None``: plain lines (few methods, distinct colours)."""
    linestyle: str = "-"
    hatch: str = ""

    def line_kw(self, n_points: int = 0) -> dict[str, object]:
        """``Axes.plot`` keywords; markers every few points of a long curve."""
        kw: dict[str, object] = {"color": self.color, "linestyle": self.linestyle}
        if self.marker:
            kw |= {"marker": self.marker, "markersize": 4, "markevery": max(1, n_points // 8)}
        return kw


def _close(a: str, b: str) -> bool:
    """Colours a reader may confuse (near in RGB; only ``#rrggbb`` values are compared)."""
    try:
        return sum((int(a[i:i + 2], 16) - int(b[i:i + 2], 16)) ** 2 for i in (1, 3, 5)) < CLOSE ** 2
    except ValueError:
        return a == b


CLOSE = 64
"""RGB distance under which two colours count as one for telling methods apart."""


def method_styles(methods: Iterable[str], overrides: Mapping[str, str] | None = None
                  ) -> dict[str, MethodStyle]:
    """A :class:`MethodStyle` per method (see the module docstring; colours closer than
    :data:`CLOSE` count as shared); the result does not depend on the order of ``methods``."""
    names = sorted(dict.fromkeys(methods))
    colors = {m: method_color(m, overrides) for m in names}
    shared = any(_close(colors[a], colors[b]) for i, a in enumerate(names) for b in names[i + 1:])
    if len(names) <= MARKER_THRESHOLD and not shared:
        return {m: MethodStyle(colors[m]) for m in names}
    taken: list[tuple[str, int]] = []
    out = {}
    for m in names:
        start = _hash(m, "marker") % len(MARKERS)
        free = [j % len(MARKERS) for j in range(start, start + len(MARKERS))
                if not any(i == j % len(MARKERS) and _close(c, colors[m]) for c, i in taken)]
        i = free[0] if free else start  # > 12 methods of one colour: only the line styles differ
        taken.append((colors[m], i))
        out[m] = MethodStyle(colors[m], MARKERS[i], LINESTYLES[_hash(m, "ls") % len(LINESTYLES)], HATCHES[i])
    return out
