"""Is a rank agreement distinguishable from chance at its number of units?

Over few units a rank correlation takes few values: over 3 tokens Spearman's rho is one of
-1, -0.5, 0.5, 1, and two unrelated maps agree "strongly" (|rho| >= 0.5) two times in three.
The test here is the permutation test of independence (Kendall & Gibbons, "Rank Correlation
Methods", 1990, ch. 4): under the null hypothesis every ordering of one map against the
other is equally likely, and ``p`` is the share of orderings whose |statistic| is at least
the observed one (two-sided).

* one item of ``n`` units: the exact distribution over all ``n!`` orderings for ``n <= 8``;
  up to 1000 units (Spearman) or 100 (Kendall), 20 000 seeded random orderings (``p = (1 +
  hits) / (1 + draws)``, never 0);
* otherwise (more units, and a mean over several items, as
  ``probe.compare`` on a batch averages per-item values): the normal approximation of the
  (mean of independent) per-item statistics, whose null variance is ``1 / (n - 1)`` for
  Spearman and ``2 (2n + 5) / (9 n (n - 1))`` for Kendall.

Ranks are taken as untied: maps with ties (a constant region) make the test approximate.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np

__all__ = ["ALPHA", "agreement_p_value", "agreement_threshold", "significance_note"]

#: two-sided level below which an agreement is shown as significant (bold)
ALPHA = 0.05
#: largest n whose n! orderings are enumerated
_EXACT_N = 8
#: random orderings drawn above it (Spearman), drawn in chunks of _CHUNK
_DRAWS = 20_000
_CHUNK = 2_000
#: above this many units the normal approximation is used (Kendall's orderings cost n^2)
_DRAWN_N = {"spearman": 1000, "kendall": 100}

Statistic = Literal["spearman", "kendall"]


def _spearman_rows(perms: np.ndarray) -> np.ndarray:
    """Spearman's rho of ``0..n-1`` against each row of ``perms`` ``[draws, n]``."""
    n = perms.shape[1]
    d = perms - np.arange(n)
    return 1.0 - 6.0 * (d * d).sum(1) / (n * (n * n - 1))


def _kendall_rows(perms: np.ndarray) -> np.ndarray:
    """Kendall's tau of ``0..n-1`` against each row of ``perms`` ``[draws, n]``."""
    n = perms.shape[1]
    i, j = np.triu_indices(n, 1)
    concordant = np.sign(perms[:, j] - perms[:, i]).sum(1)
    return concordant / (n * (n - 1) / 2)


@lru_cache(maxsize=64)
def _null(statistic: Statistic, n: int) -> tuple[np.ndarray, bool]:
    """Sorted ``|statistic|`` under independence for one item of ``n`` units, and whether
    the distribution is exact (every ordering) rather than drawn."""
    rows = _spearman_rows if statistic == "spearman" else _kendall_rows
    if n <= _EXACT_N:
        perms = np.array(list(itertools.permutations(range(n))), dtype=np.int64)
        return np.sort(np.abs(rows(perms))), True
    rng = np.random.default_rng(0)
    drawn = [np.abs(rows(np.argsort(rng.random((_CHUNK, n)), axis=1)))
             for _ in range(_DRAWS // _CHUNK)]
    return np.sort(np.concatenate(drawn)), False


def _permuted(statistic: Statistic, sizes: list[int]) -> bool:
    """Whether ``p`` comes from orderings (exact or drawn), not the normal approximation."""
    if len(sizes) != 1:
        return False
    return sizes[0] <= _DRAWN_N[statistic]


def _null_variance(statistic: Statistic, n: int) -> float:
    if statistic == "spearman":
        return 1.0 / (n - 1)
    return 2.0 * (2 * n + 5) / (9.0 * n * (n - 1))


def _sizes(units: int | Sequence[int]) -> list[int]:
    sizes = [int(units)] if isinstance(units, (int, np.integer)) else [int(u) for u in units]
    return [u for u in sizes if u >= 2]  # fewer than two units: no agreement is defined


def agreement_p_value(value: float, units: int | Sequence[int],
                      statistic: Statistic = "spearman") -> float:
    """Two-sided ``p`` of a rank correlation (or a mean of per-item ones) under independence.

    Args:
        value: the observed statistic (a mean over items when ``units`` lists several).
        units: the number of units it is over, or one count per item averaged.
        statistic: ``"spearman"`` or ``"kendall"``.

    Returns:
        ``p`` in ``(0, 1]``; ``nan`` for a ``nan`` value or no item of two units or more.
    """
    sizes = _sizes(units)
    if not sizes or not math.isfinite(value):
        return float("nan")
    observed = abs(float(value)) - 1e-9  # the observed value itself counts as a hit
    if _permuted(statistic, sizes):
        null, exact = _null(statistic, sizes[0])
        hits = len(null) - int(np.searchsorted(null, observed, side="left"))
        return hits / len(null) if exact else (1 + hits) / (1 + len(null))
    sd = math.sqrt(sum(_null_variance(statistic, n) for n in sizes)) / len(sizes)
    return math.erfc(abs(float(value)) / sd / math.sqrt(2.0))


def agreement_threshold(units: int | Sequence[int], statistic: Statistic = "spearman",
                        alpha: float = ALPHA) -> float | None:
    """The smallest ``|value|`` whose ``p`` is below ``alpha``; ``None`` when no value can be
    (Spearman over 4 units or fewer: even rho = 1 has p = 2/24 > 0.05)."""
    sizes = _sizes(units)
    if not sizes:
        return None
    if _permuted(statistic, sizes):
        null, exact = _null(statistic, sizes[0])
        values = np.unique(null)  # ascending; p falls as the value grows
        hits = len(null) - np.searchsorted(null, values - 1e-9, side="left")
        p = hits / len(null) if exact else (1 + hits) / (1 + len(null))
        below = np.nonzero(p < alpha)[0]
        return float(values[below[0]]) if len(below) else None
    sd = math.sqrt(sum(_null_variance(statistic, n) for n in sizes)) / len(sizes)
    z = _normal_quantile(1 - alpha / 2)
    return z * sd if z * sd <= 1 else None


def _normal_quantile(q: float) -> float:
    lo, hi = 0.0, 10.0
    for _ in range(80):  # bisection on erfc: plenty for a threshold
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(mid / math.sqrt(2.0)) > 1 - q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def units_text(units: int | Sequence[int], unit: str = "units") -> str:
    """``N = 7 tokens``, ``N = 12-14 tokens per item, 8 items``."""
    sizes = [int(units)] if isinstance(units, (int, np.integer)) else [int(u) for u in units]
    if not sizes:
        return f"N = 0 {unit}"
    low, high = min(sizes), max(sizes)
    span = str(low) if low == high else f"{low}-{high}"
    if len(sizes) == 1:
        return f"N = {span} {unit}"
    return f"N = {span} {unit} per item, {len(sizes)} items"


def significance_note(units: int | Sequence[int], statistic: Statistic = "spearman",
                      unit: str = "units", bold: str = "bold") -> str:
    """What the emphasis means at this N: ``N = 7 tokens · bold: p < 0.05, two-sided (exact
    permutation test: |ρ| ≥ 0.79)``, or that no value can be significant."""
    symbol = "\u03c1" if statistic == "spearman" else "\u03c4"
    sizes = _sizes(units)
    head = units_text(units, unit)
    threshold = agreement_threshold(units, statistic)
    if threshold is None:
        return (f"{head}: no {symbol} can reach p < {ALPHA:g} at this N, so none is {bold}")
    if _permuted(statistic, sizes):
        test = ("exact permutation test" if sizes[0] <= _EXACT_N
                else f"permutation test, {_DRAWS} orderings")
    else:
        test = "normal approximation" + (" over items" if len(sizes) > 1 else "")
    return (f"{head} \u00b7 {bold}: p < {ALPHA:g}, two-sided ({test}: |{symbol}| \u2265 "
            f"{threshold:.2f})")
