"""The subscription plans of the benchmarks' generated customers, shared by the trends and retention benchmarks
so that both report on customers of the same kind."""

from __future__ import annotations

from typing import Any

PLANS = (
    ("starter", 0.45, 19, 29),
    ("pro", 0.35, 49, 99),
    ("business", 0.17, 199, 499),
    ("enterprise", 0.03, 1500, 6000),
)
"""(name, share of customers, lowest MRR, highest MRR)."""


def draw_plans(rng: Any, rows: int) -> tuple[Any, Any]:
    """(each row's plan name, its MRR): plans drawn by their shares from the numpy generator `rng`, the MRR uniform
    in the plan's range, rounded to cents."""
    import numpy as np

    plan = rng.choice(len(PLANS), size=rows, p=[p[1] for p in PLANS])
    low, high = np.array([p[2] for p in PLANS]), np.array([p[3] for p in PLANS])
    mrr = np.round(rng.uniform(low[plan], high[plan]), 2)
    return np.array([p[0] for p in PLANS], dtype=object)[plan], mrr
