"""The 2013 European Standard Population (ESP), the weights of direct age standardisation.

Source: Eurostat, "Revision of the European Standard Population", Methodologies and
Working papers, 2013 edition (KS-RA-13-028), table 3.1: persons per 100,000 in five-year
age groups, the same for both sexes. A band that cuts a five-year group takes the group's
weight in proportion to the single years it covers; ``95+`` is spread over 95 to
``MAX_AGE``.
"""

from __future__ import annotations

from indicators.catalogue import MAX_AGE

__all__ = ["ESP_2013", "band_weight"]

# (lowest age of the five-year group, persons per 100,000); the last group is open (95+).
ESP_2013: tuple[tuple[int, int], ...] = (
    (0, 5000), (5, 5500), (10, 5500), (15, 5500), (20, 6000), (25, 6000), (30, 6500),
    (35, 7000), (40, 7000), (45, 7000), (50, 7000), (55, 6500), (60, 6000), (65, 5500),
    (70, 5000), (75, 4000), (80, 2500), (85, 1500), (90, 800), (95, 200),
)  # fmt: skip


def _per_year(age: int) -> float:
    for low, weight in reversed(ESP_2013):
        if age >= low:
            width = MAX_AGE - low + 1 if low == ESP_2013[-1][0] else 5
            return weight / width
    raise ValueError(f"age {age} is below the standard population's first group")


def band_weight(low: int, high: int) -> float:
    """The standard population (per 100,000) aged ``low`` to ``high`` inclusive."""
    return sum(_per_year(age) for age in range(low, min(high, MAX_AGE) + 1))
