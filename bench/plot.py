"""Charts for ``swarmrank bench replay --plot``: each method's accuracy, or accuracy against the
number of adversaries for ``--sweep-adversaries`` (matplotlib, from the ``bench`` extra)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

METHODS = (("swarm_accuracy", "swarm"), ("weighted_vote_accuracy", "reputation-weighted vote"),
           ("plurality_accuracy", "plurality vote"), ("best_single_accuracy", "best single node"),
           ("oracle_accuracy", "oracle (any node right)"))


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'swarmrank[bench]'") from None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _title(result: dict[str, Any]) -> str:
    return f"{result['dataset']}: {result['questions']} questions, {result['nodes']} nodes, seed {result['seed']}"


def methods(result: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    labels = [label for _, label in METHODS][::-1]
    values = [100 * result[key] for key, _ in METHODS][::-1]
    bars = ax.barh(labels, values, color=["#bbbbbb", "#8c8c8c", "#6f9fd8", "#3b73b9", "#d4542b"])
    ax.bar_label(bars, fmt="%.1f%%", padding=3)
    ax.set_xlim(0, 105)
    ax.set_xlabel("accuracy (%)")
    ax.set_title(_title(result), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def sweep(results: Sequence[dict[str, Any]], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = [r["adversaries"] for r in results]
    for key, label in METHODS[:4]:
        ax.plot(xs, [100 * r[key] for r in results], marker="o", label=label)
    ax.set_xticks(xs)
    honest = results[0]["nodes"] - results[0]["adversaries"]
    ax.set_xlabel(f"{results[-1]['adversary_kind'] or 'adversarial'} nodes added to {honest} honest nodes")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{results[0]['dataset']}: {results[0]['questions']} questions, seed {results[0]['seed']}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
