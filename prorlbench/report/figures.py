"""What every figure of the report shares: saving (PNG and PDF, atomically), the method legend,
text safe for matplotlib.

Uses matplotlib's object API (no pyplot global state). Every figure goes through
:func:`save_figure`, so one PNG and one PDF of it are written, byte for byte the same for the same
data (no dates or software versions in the files).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Iterable

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..folder.files import atomic_write
from .colors import MethodStyle

DPI = 120
"""PNG resolution (dots per inch)."""


def mpl_text(text: str) -> str:
    """Plain text for matplotlib: a ``$`` would start mathtext."""
    return str(text).replace("$", r"\$")


def save_figure(fig: Figure, path: Path, dpi: int = DPI) -> list[Path]:
    """Write ``path`` (PNG) and the same figure as PDF next to it; returns both paths."""
    FigureCanvasAgg(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _savefig(fig, path, dpi=dpi, format="png", metadata={"Software": None})
    pdf = path.with_suffix(".pdf")
    _savefig(fig, pdf, format="pdf", metadata={"Creator": None, "Producer": None, "CreationDate": None})
    return [path, pdf]


def _savefig(fig: Figure, path: Path, **kw: Any) -> None:
    """``fig.savefig`` into memory, then :func:`~prorlbench.folder.files.atomic_write`: the file is
    replaced, never written through a link someone put in the folder."""
    buf = io.BytesIO()
    fig.savefig(buf, **kw)
    data = buf.getvalue()
    atomic_write(path, lambda fh: fh.write(data), fsync=False)


def panel_grid(fig: Figure, nrows: int, ncols: int, *, left: float = 0.75, right: float = 0.2,
               top: float = 0.55, bottom: float = 0.6, wspace: float = 0.8, hspace: float = 0.75) -> list:
    """``nrows`` x ``ncols`` axes with margins and gaps given in inches (a fixed layout: a layout
    engine would measure every tick label at every save, most of the drawing time)."""
    w, h = fig.get_size_inches()
    aw = (w - left - right - wspace * (ncols - 1)) / ncols
    ah = (h - top - bottom - hspace * (nrows - 1)) / nrows
    fig.subplots_adjust(left=left / w, right=1 - right / w, top=1 - top / h, bottom=bottom / h,
                        wspace=wspace / aw, hspace=hspace / ah)
    return list(fig.subplots(nrows, ncols, squeeze=False).ravel())


def title(fig: Figure, text: str, fontsize: float = 10) -> None:
    """The figure's title, 0.1 inch from its top edge (above the panel titles)."""
    fig.suptitle(mpl_text(text), fontsize=fontsize, y=1 - 0.1 / fig.get_size_inches()[1], va="top")


def legend_height(n: int, cols: int) -> float:
    """Inches a figure legend of ``n`` entries in ``cols`` columns takes under the panels."""
    return 0.12 + 0.2 * -(-n // max(cols, 1))


def line_handle(style: MethodStyle, label: str) -> Line2D:
    """A legend entry drawn like the method's lines."""
    return Line2D([], [], label=mpl_text(label), linewidth=1.5, **style.line_kw())


def bar_handle(style: MethodStyle, label: str) -> Patch:
    """A legend entry drawn like the method's bars."""
    return Patch(facecolor=style.color, edgecolor="0.25" if style.hatch else style.color,
                 hatch=style.hatch or None, label=mpl_text(label))


def method_legend(fig: Figure, handles: Iterable[Any], *, max_cols: int = 6) -> None:
    """One figure legend at the bottom of the figure, an entry per method (leave
    :func:`legend_height` free there)."""
    handles = list(handles)
    if handles:
        fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(handles), max_cols),
                   fontsize=8, frameon=False, borderaxespad=0.2, handlelength=2.6)
