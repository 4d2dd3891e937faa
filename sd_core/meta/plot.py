"""Weight diagnostics: ``weights.png`` and the terminal table of shares per data set × class."""

from __future__ import annotations

import io
from typing import Any, Mapping, Sequence

from sd_core.meta.weights import group_label


def weights_png(diagnostics: Mapping[str, Sequence[Mapping[str, Any]]]) -> bytes:
    """Bars per (data set × class): share before weighting, after (copies made) and expected
    under the sampler; one panel per weighted split. Same input, same bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    splits = list(diagnostics)
    widest = max(len(diagnostics[s]) for s in splits)
    fig, axes = plt.subplots(len(splits), 1, figsize=(max(6.0, 0.7 * widest + 2), 3.4 * len(splits)),
                             dpi=100, squeeze=False)
    for ax, split in zip(axes[:, 0], splits):
        rows = diagnostics[split]
        x = np.arange(len(rows))
        for k, (key, name) in enumerate((("share_before", "before weighting"),
                                         ("share_after", "after (copies made)"),
                                         ("share_expected", "expected (sampler)"))):
            ax.bar(x + (k - 1) * 0.27, [r[key] for r in rows], 0.27, label=name)
        ax.set_xticks(x, [group_label((r["dataset"], r["class"])) for r in rows], rotation=30,
                      ha="right", fontsize=8)
        ax.set_ylabel("share of rows")
        ax.set_title(f"{split}: shares per data set × class")
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def shares_table(split: str, rows: Sequence[Mapping[str, Any]]):
    """A rich table of one weighted split's diagnostics."""
    from rich.table import Table

    t = Table(title=f"{split}: weights per data set × class", title_justify="left", header_style="bold")
    for c in ("data set", "class", "rows", "weight", "copies", "share before", "share after",
              "expected"):
        t.add_column(c, justify="left" if c in ("data set", "class") else "right")
    for r in rows:
        t.add_row(r["dataset"], r["class"] or "(none)", str(r["rows"]), f"{r['weight']:.3g}",
                  str(r["copies"]), f"{r['share_before']:.1%}", f"{r['share_after']:.1%}",
                  f"{r['share_expected']:.1%}")
    return t
