"""OpenDP's discrete Gaussian sampler at a node's scales: on the scale grid and off it.

A node draws every noisy value from OpenDP's exact sampler (`privacy.gaussian`), which
works with the scale as an exact fraction. The node rounds each scale up to
`privacy.gaussian.SCALE_BITS` significant bits (`on_grid`); this measures, in one process
on the same vectors, the sampler's CPU per value at the closed-form scale (a float's full
53-bit mantissa: the baseline) and at the scale on the grid, and the CPU of calibrating a
new (sensitivity, rho) pair: building OpenDP's measurement and checking its privacy map,
as the node does once per pair (the baseline moves up by float steps, as before the grid).
It also times the (epsilon, delta) figures a node reports with every answer
(`privacy.budget.epsilon_for`, for budgets that change with every query) against OpenDP's
own search for epsilon (`PrivacyProfile.epsilon`: the baseline).

The scales are those of the federation benchmark's table at the given rho (sensitivity 1,
the node's default margin share: the cells, and each of the table's margins, as
`indicators.spec.margin_codes` lists them) and of a weighted survey's counts (sensitivity
23). Not part of the test suite.

Run:  .venv/bin/python bench/noise_bench.py [--rho 0.01] [--values 300] [--rounds 7]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from indicators.spec import Query, compile_query, margin_codes
from node.config import PrivacyConfig
from privacy.budget import DEFAULT_DELTA, epsilon_for, split_rho, zcdp_profile
from privacy.gaussian import closed_form_sigma, make_measurement, on_grid, sigma_for

MARGIN_SHARE = PrivacyConfig(1.0, 1.0, 1.0, 0.2).margin_rho_share  # the node's default
TABLE = compile_query(Query(("employment_rate",), "citizen", ("sex", "age"))).tables[0]
MARGINS = len(margin_codes(TABLE))  # the margins share the margin rho equally


def per_value_us(sigma: float, values: int, rounds: int) -> float:
    """Fastest CPU time per drawn value, in microseconds, over ``rounds`` rounds."""
    measurement = make_measurement(sigma)
    counts = np.full(values, 1_000, dtype=np.int64)
    measurement(counts)  # warm
    best = math.inf
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(20):
            measurement(counts)
        best = min(best, (time.process_time() - started) / 20)
    return best / values * 1e6


def float_steps_calibration(sensitivity: int, rho: float) -> float:
    """The scale calibrated the way it was before the grid: float steps up from closed form."""
    sigma = closed_form_sigma(sensitivity, rho)
    while float(make_measurement(sigma).map(sensitivity)) > rho:
        sigma = math.nextafter(sigma, math.inf) * (1 + 1e-12)
    return sigma


def calibration_ms(calibrate: object, rho: float, pairs: int = 200) -> float:
    """CPU per new (sensitivity, rho) pair, in milliseconds (each pair a slightly other rho)."""
    assert callable(calibrate)
    started = time.process_time()
    for i in range(pairs):
        calibrate(1, rho * (1 + i / 1e4))
    return (time.process_time() - started) / pairs * 1e3


def opendp_epsilon(rho: float) -> float:
    """Epsilon at `DEFAULT_DELTA` by OpenDP's own search over its zCDP conversion."""
    return float(zcdp_profile(rho).epsilon(DEFAULT_DELTA))


def epsilon_ms(convert: object, pairs: int = 100) -> float:
    """CPU per conversion of a budget never converted before, in milliseconds."""
    assert callable(convert)
    started = time.process_time()
    for i in range(pairs):
        convert(0.0377 * (1 + i / 1e3))  # a budget spent or left: new with every query
    return (time.process_time() - started) / pairs * 1e3


def main() -> None:
    """Print per-value sampling CPU off and on the grid, and calibration CPU, with ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rho", type=float, default=0.01)
    parser.add_argument("--values", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    cells, margins = split_rho(args.rho, [1 - MARGIN_SHARE, MARGIN_SHARE])
    scales = {
        "cells (sensitivity 1)": closed_form_sigma(1, cells),
        "one margin (sensitivity 1)": closed_form_sigma(1, margins / MARGINS),
        "survey counts (sensitivity 23)": closed_form_sigma(23, cells),
    }
    print(f"OpenDP discrete Gaussian, {args.values} values per call, best of {args.rounds}")
    widths = {"scale": -32, "closed form": 14, "on the grid": 14, "us/value": 10, "grid": 9}
    print("".join(f"{h:<{-w}}" if w < 0 else f"{h:>{w}}" for h, w in widths.items()) + "    ratio")
    for name, sigma in scales.items():
        grid = on_grid(sigma)
        baseline = per_value_us(sigma, args.values, args.rounds)
        gridded = per_value_us(grid, args.values, args.rounds)
        print(
            f"{name:<32}{sigma:>14.9f}{grid:>14.9f}{baseline:>10.2f}{gridded:>9.2f}"
            f"{gridded / baseline:>9.2f}"
        )
    baseline = calibration_ms(float_steps_calibration, cells)
    gridded = calibration_ms(sigma_for, cells)  # each rho new: never from the cache
    print(f"calibrating a new pair: float steps {baseline:.3f} ms, grid {gridded:.3f} ms, "
          f"ratio {gridded / baseline:.2f}")  # fmt: skip
    baseline, certified = epsilon_ms(opendp_epsilon), epsilon_ms(epsilon_for)
    print(f"a budget as epsilon: OpenDP's search {baseline:.3f} ms, certified optimum "
          f"{certified:.3f} ms, ratio {certified / baseline:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
