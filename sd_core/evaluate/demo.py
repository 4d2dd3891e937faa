"""The evaluation stage of ``sd demo``: the demo's generated set judged against its real data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: steps of each classifier the demo's evaluation trains (the real one, 3 seeds × 3 utility runs)
DEMO_STEPS = 100


def evaluate_demo(processed: Path, generated: Path, work: Path, seed: int = 0, console: Any = None) -> int:
    """Run ``sd evaluate`` on the demo's sets into ``work/report/<name>-evaluation``, print its
    headline tables; returns 1 on failure (reported), else 0."""
    from rich.markup import escape

    from sd_core.errors import SdError
    from sd_core.evaluate.report import terminal_tables, write_outputs
    from sd_core.evaluate.run import Options, evaluate

    out = Path(work) / "report" / f"{Path(generated).name}-evaluation"
    if console is not None:
        console.print(f"[bold]{Path(generated).name}[/]: evaluating the generated set against the real test split")
    try:
        ev = evaluate(Path(processed), Path(generated), out, Options(seed=seed, steps=DEMO_STEPS),
                      console=console)
        paths = write_outputs(out, ev)
    except SdError as exc:
        if console is not None:
            console.print(f"[red]evaluation: {escape(str(exc))}[/]")
        return 1
    if console is not None:
        for t in terminal_tables(ev["result"]):
            console.print(t)
        console.print(f"evaluation report: {paths['html']} (numbers in {paths['json'].name}); run it "
                      f"yourself with `sd evaluate {processed} {generated}`")
    return 0
