"""The statistics of offer performance: a rate's confidence interval, two rates compared, the sample needed.

Accept and save rates of a few dozen customers move by chance; the report gives every rate with a
Wilson score interval (right even near 0 % and 100 % and for small counts, where the usual
p ± 1.96·SE leaves [0, 1]), compares each variant of an experiment with its control by a pooled
two-proportion z-test, and says how many customers per variant a difference as large as the one
seen needs to be detected at the chosen significance and power (Fleiss' formula, without
continuity correction), so nobody stops an experiment at the first lucky week.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()


def z_for(confidence: float) -> float:
    """The two-sided normal quantile of a confidence level (1.959964 for 0.95)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence} must be between 0 and 1")
    return _NORMAL.inv_cdf(1 - (1 - confidence) / 2)


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """The Wilson score interval of `successes` / `trials` as (low, high) fractions; None without trials."""
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes out of {trials} trials")
    z = z_for(confidence)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Comparison:
    """A variant's rate against its control's: `difference` = variant − control (fraction), the z statistic
    and two-sided p-value of the pooled two-proportion test, and the sample per group that a difference of
    this size needs (None when there is no difference to detect, or no data)."""

    control_rate: float | None
    variant_rate: float | None
    difference: float | None
    z: float | None
    p_value: float | None
    significant: bool
    needed_per_group: int | None
    still_needed_per_group: int | None


def two_proportion_test(
    control_successes: int, control_trials: int, variant_successes: int, variant_trials: int
) -> tuple[float, float] | None:
    """(z, two-sided p) of the pooled two-proportion z-test of variant against control; None when a group
    is empty or every (or no) trial succeeded in both, where the test is undefined."""
    if control_trials <= 0 or variant_trials <= 0:
        return None
    p1, p2 = control_successes / control_trials, variant_successes / variant_trials
    pooled = (control_successes + variant_successes) / (control_trials + variant_trials)
    variance = pooled * (1 - pooled) * (1 / control_trials + 1 / variant_trials)
    if variance <= 0:
        return None
    z = (p2 - p1) / math.sqrt(variance)
    return z, 2 * (1 - _NORMAL.cdf(abs(z)))


def sample_size_per_group(p1: float, p2: float, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Customers per group to detect rates `p1` against `p2` with a two-sided test at `alpha` with `power`;
    None when they are equal (no sample is large enough)."""
    if p1 == p2:
        return None
    z_alpha = _NORMAL.inv_cdf(1 - alpha / 2)
    z_beta = _NORMAL.inv_cdf(power)
    mean = (p1 + p2) / 2
    numerator = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_beta * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(numerator**2 / (p1 - p2) ** 2)


def compare(
    control_successes: int,
    control_trials: int,
    variant_successes: int,
    variant_trials: int,
    alpha: float = 0.05,
    power: float = 0.8,
) -> Comparison:
    """Everything the report says about one variant against its control, for one rate."""
    control_rate = control_successes / control_trials if control_trials else None
    variant_rate = variant_successes / variant_trials if variant_trials else None
    test = two_proportion_test(control_successes, control_trials, variant_successes, variant_trials)
    needed = (
        sample_size_per_group(control_rate, variant_rate, alpha, power)
        if control_rate is not None and variant_rate is not None
        else None
    )
    return Comparison(
        control_rate=control_rate,
        variant_rate=variant_rate,
        difference=None if control_rate is None or variant_rate is None else variant_rate - control_rate,
        z=None if test is None else test[0],
        p_value=None if test is None else test[1],
        significant=test is not None and test[1] < alpha,
        needed_per_group=needed,
        still_needed_per_group=None if needed is None else max(0, needed - min(control_trials, variant_trials)),
    )
