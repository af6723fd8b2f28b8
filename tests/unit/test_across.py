"""Every node's ratio rows, computed across all nodes at once, equal the rows node by node.

`coordinator.across` stacks the nodes' tables and estimates every node's rows as arrays.
These tests compute each node's rows themselves, one node, group and cell at a time, from
the same released tables, in plain numpy and closed forms (the ratio and its delta-method
variance, the inverse-variance base with the node's margins, the unknown share, the score
interval of the rate, the MOVER interval of the gap, the node's rules), and require the
same published text in every column; they also require the batched rows to equal, bit
for bit, the rows the coordinator's own one-source-at-a-time path gives each node. The
tables are real OpenDP releases: registers with and without margins, surveys, a node
whose small cells have no positive denominator, and the demo's signed results.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest

from coordinator import across
from coordinator.bases import Base, Margin, Stacked, TableBases
from coordinator.combine import (
    _gap_fields,
    _published,
    _rows_for,
    _Source,
    benchmark_rows,
    comparator_cell,
    comparator_group,
    groups_of,
)
from coordinator.flags import Status
from coordinator.kinds import Gathered, Harmonised, kind_of
from coordinator.pooling import Pooling
from coordinator.publish.numbers import published
from coordinator.results import NodeTables, read_result
from coordinator.rowmeta import describe_rows
from coordinator.rows import BenchmarkRow
from indicators.catalogue import Indicator
from indicators.spec import Plan, Query, TableSpec, compile_query
from privacy import estimators
from privacy.disclosure import FLAG_CODES, NAMED_RULES, DisclosureRules, Noisy, RuleColumns
from privacy.estimators import Z95, Cells, Estimate, selected_sums, selections_sums
from privacy.gaussian import release
from protos import node_pb2 as pb

DEMO = Path(__file__).resolve().parents[1] / "fixtures" / "provenance_0_1" / "harmonised"
COLUMNS = ("value", "ci_low", "ci_high", "comparator_value", "gap", "gap_ci_low", "gap_ci_high")


def _plan(indicator: str = "employment_rate", comparator: str = "NAT") -> Plan:
    return compile_query(Query((indicator,), "citizen", ("sex", "age"), comparator, 0.5), None)


def _margin(spec: TableSpec, true: np.ndarray, codes: tuple[str, ...], rho: float) -> Margin:
    """A released margin of ``codes`` summed from the true table (UNK: a true count of its own)."""
    outcome = spec.outcome.codes
    table = true.reshape(spec.shape)
    at = [outcome.index(c) for c in codes if c in outcome]
    counts = table[..., at].sum(axis=-1) if at else np.rint(table.sum(axis=-1) * 0.05)
    noisy = release(counts.ravel().astype(np.int64), 1, rho)
    return Margin(codes, False, noisy.values.astype(np.float64), noisy.sigma)


def _node(k: int, spec: TableSpec, rng: np.random.Generator) -> NodeTables:
    """Node ``k``: a register (with or without margins), a survey, or a tiny city."""
    scale = 0.3 if k % 5 == 4 else 6.0 * (1 + k % 3)  # node 4 and 9: many empty cells
    true = rng.poisson(scale, spec.n_cells).astype(np.int64)
    noisy = release(true, 1, 0.5)
    values = noisy.values.astype(np.float64)
    margins: tuple[Margin, ...] = ()
    rules = NAMED_RULES["register"]
    if k % 5 == 1:  # a survey: sample counts, a design effect, EU-SILC's rules
        samples = release(np.maximum(true // 3, 0), 1, 0.5)
        cells = Cells.of(values * 3.0, noisy.sigma, samples.values, samples.sigma, 1.4)
        rules = NAMED_RULES["eu-silc"]
    else:
        cells = Cells.of(values, noisy.sigma)
    if k % 5 in (2, 3):  # a register releasing its margins, with the unknown outcome's
        outcome = spec.outcome.codes
        margins = (_margin(spec, true, outcome, 0.5), _margin(spec, true, ("UNK",), 0.5))
        rules = DisclosureRules(min_count=10, unreliable_below=30, max_cv=0.2, unknown_flag=0.03)
    return NodeTables(
        node_id=f"n{k}", geo=f"G{k}", time_period="2024", source="register", rules=rules,
        cells={spec.key: cells}, cell_flags={spec.key: []}, country="XX",
        margins={spec.key: margins},
    )  # fmt: skip


def _combined(parts: list[tuple[float, float]]) -> tuple[float, float]:
    usable = [(v, var) for v, var in parts if var > 0 and math.isfinite(v)]
    if not usable:
        return parts[0]
    weight = sum(1 / var for _, var in usable)
    return sum(v / var for v, var in usable) / weight, 1 / weight


def _count(
    a: NodeTables, spec: TableSpec, members: list[int], cell: tuple[int, ...],
    codes: tuple[str, ...], observations: bool = False,
) -> tuple[float, float] | None:  # fmt: skip
    """A count of the node in the group and cell: its cells' sum with any margin of it."""
    cells = a.cells[spec.key]
    outcome = spec.outcome.codes
    at = [outcome.index(c) for c in codes if c in outcome]
    x = (cells.samples if observations else cells.values).reshape(spec.shape)
    noise = (cells.sample_noise_variance if observations else cells.noise_variance).reshape(
        spec.shape
    )
    parts = []
    if at:
        parts.append(
            (
                sum(float(x[g][cell][o]) for g in members for o in at),
                sum(float(noise[g][cell][o]) for g in members for o in at),
            )
        )
    flat = spec.shape[:-1]
    for m in a.margins.get(spec.key, ()):
        if m.codes == codes and m.observations == observations:
            values = m.values.reshape(flat)
            parts.append(
                (sum(float(values[(g, *cell)]) for g in members), len(members) * m.sigma**2)
            )
    return _combined(parts) if parts else None


@dataclasses.dataclass
class _Own:
    """One node's estimate of a group in a cell, and what the rules read."""

    defined: bool
    base: Noisy
    observations: Noisy | None
    unknown: float | None
    value: float = math.nan
    se: float = math.nan
    grad: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    interval: tuple[float, float] = (math.nan, math.nan)
    denominator: float = math.nan
    flag: str = ""
    shown: bool = False


def _own(
    a: NodeTables, spec: TableSpec, indicator: Indicator, members: list[int], cell: tuple[int, ...]
) -> _Own:
    """One node's estimate of a group in a cell, straight from the definitions."""
    cells = a.cells[spec.key]
    outcome = spec.outcome.codes
    num_at = [i for i, c in enumerate(outcome) if c in indicator.numerator]
    den_at = [i for i, c in enumerate(outcome) if c in indicator.denominator]
    selected = np.zeros(spec.shape)
    num, den = selected.copy(), selected.copy()
    for g in members:
        num[g][cell][num_at] = 1.0
        den[g][cell][den_at] = 1.0
    num, den = num.ravel(), den.ravel()
    x = cells.values
    d = float(x @ den)
    count = _count(a, spec, members, cell, tuple(outcome[i] for i in den_at))
    observed = None
    if np.any(cells.deff > 0):
        observed = _count(a, spec, members, cell, tuple(outcome[i] for i in den_at), True)
    unknown = None
    if any(m.codes == ("UNK",) for m in a.margins.get(spec.key, ())):
        known = _count(a, spec, members, cell, outcome)
        missing = _count(a, spec, members, cell, ("UNK",))
        assert known is not None and missing is not None
        total = max(known[0], 0) + max(missing[0], 0)
        unknown = min(max(missing[0], 0) / total, 1) if total > 0 else None
    assert count is not None
    base = Noisy(count[0], math.sqrt(count[1]))
    obs = None if observed is None else Noisy(observed[0], math.sqrt(observed[1]))
    out = _Own(d > 0, base, obs, unknown)
    if d <= 0:
        return out
    r = float(x @ num) / d
    grad = (num - r * den) / d
    se = math.sqrt(float(np.sum(grad**2 * cells.variance)))
    # the score interval: (r - p)^2 <= z^2 (S_num (1 - 2p) + S_den p^2 + k p (1 - p)) / ...
    rc = min(max(r, 0.0), 1.0)
    s_num = float(cells.noise_variance @ num) / d**2
    s_den = float(cells.noise_variance @ den) / d**2
    deff = float(np.max(cells.deff * den))
    n = float(cells.samples @ den)
    k = deff / max(n, 1.0) if deff > 0 else 0.0  # one table: (d_j / d)^2 = 1
    qa, qb = 1 + Z95**2 * (k - s_den), -2 * rc + Z95**2 * (2 * s_num - k)
    qc = rc * rc - Z95**2 * s_num
    disc = qb * qb - 4 * qa * qc
    interval = (math.nan, math.nan)
    if qa > 0 and disc >= 0:
        low, high = (-qb - math.sqrt(disc)) / (2 * qa), (-qb + math.sqrt(disc)) / (2 * qa)
        interval = (max(0.0, min(low, rc)), min(1.0, max(high, rc)))
    return dataclasses.replace(
        out, value=r, se=se, grad=grad, interval=interval, denominator=count[0]
    )


def _published_row(
    a: NodeTables, spec: TableSpec, indicator: Indicator, comparator: str
) -> dict[tuple[str, tuple[int, ...]], dict[str, str]]:
    """Every row of the node, published as text, computed here one row at a time."""
    cells = a.cells[spec.key]
    members = dict(groups_of(spec))
    rows: dict[tuple[str, tuple[int, ...]], dict[str, str]] = {}
    estimates: dict[tuple[str, tuple[int, ...]], _Own] = {}

    def estimate(group: str, cell: tuple[int, ...]) -> _Own:
        if (group, cell) not in estimates:
            e = _own(a, spec, indicator, members[group], cell)
            judged = a.rules.judge(e.base, e.observations, e.unknown)
            e.flag = a.rules.estimate_flag(judged.flag, e.value, e.se)
            e.shown = not judged.suppressed and e.defined and all(map(math.isfinite, e.interval))
            if not e.shown:  # the rules' own flag, else u (no denominator, or noise swamps it)
                e.flag = e.flag or "u"
            estimates[(group, cell)] = e
        return estimates[(group, cell)]

    def share(x: float) -> float:
        return min(max(x, 0.0), 1.0)

    for cell in np.ndindex(*spec.shape[1:-1]):
        for group, _ in groups_of(spec):
            e = estimate(group, cell)
            versus = comparator_cell(spec, comparator, group, cell)
            c = estimate(*versus)
            text = dict.fromkeys((*COLUMNS, "denominator"), "")
            text["flags"], text["status"] = e.flag, "published" if e.shown else ""
            if c.shown:
                text["comparator_value"] = published(100 * share(c.value))
            if e.shown:
                text["value"] = published(100 * share(e.value))
                text["ci_low"] = published(100 * e.interval[0])
                text["ci_high"] = published(100 * e.interval[1])
                text["denominator"] = published(e.denominator, 0)
            if e.shown and c.shown and versus != (group, cell):
                t1, t2 = share(e.value), share(c.value)
                (l1, u1), (l2, u2) = e.interval, c.interval
                cov = float(np.sum(e.grad * c.grad * cells.variance))
                rho = cov / (e.se * c.se) if e.se > 0 and c.se > 0 else 0.0
                rho = min(max(rho, -1), 1)
                down = (t1 - l1) ** 2 + (u2 - t2) ** 2 - 2 * rho * (t1 - l1) * (u2 - t2)
                up = (u1 - t1) ** 2 + (t2 - l2) ** 2 - 2 * rho * (u1 - t1) * (t2 - l2)
                gap = t1 - t2
                text["gap"] = published(100 * gap)
                text["gap_ci_low"] = published(100 * max(gap - math.sqrt(max(down, 0)), -1))
                text["gap_ci_high"] = published(100 * min(gap + math.sqrt(max(up, 0)), 1))
            rows[(group, cell)] = text
    return rows


def _text(row: BenchmarkRow) -> dict[str, str]:
    text = {c: published(getattr(row, c)) for c in COLUMNS}
    text["denominator"] = published(row.denominator, 0)
    text["flags"] = str(row.flags)
    text["status"] = "published" if row.status == "published" else ""
    return text


def _key(row: BenchmarkRow, spec: TableSpec) -> tuple[str, tuple[int, ...]]:
    dims = spec.dims[1:]
    return row.group, tuple(d.codes.index(row.breakdown[d.name]) for d in dims)


def _check(plan: Plan, answers: dict[str, NodeTables], indicator_name: str) -> int:
    """Compare the batched rows with this module's and with the one-source path's."""
    indicator, spec = plan.indicator(indicator_name)
    rows = benchmark_rows(plan, list(answers), answers, pooled=False)
    comparator = comparator_group(spec, plan.query.comparator)
    checked = 0
    for node, answer in answers.items():
        mine = [r for r in rows if r.node == node and r.indicator == indicator_name]
        expected = _published_row(answer, spec, indicator, comparator)
        assert len(mine) == len(expected)
        for row in mine:
            assert _text(row) == expected[_key(row, spec)], (node, row.group, row.breakdown)
            checked += row.status == "published"
        source = _Source(
            node, answer.geo, answer.time_period, answer.cells[spec.key], answer.rules,
            [answer.margins.get(spec.key, ())],
        )  # fmt: skip
        one = _rows_for(source, spec, indicator, plan)
        assert [_fields(r) for r in mine] == [_fields(r) for r in one]  # bit for bit
    return checked


def _fields(row: BenchmarkRow) -> tuple[object, ...]:
    """Every field of a row, nan-safe (nan compares equal to nan)."""
    out: list[object] = []
    for f in dataclasses.fields(row):
        value = getattr(row, f.name)
        if f.name == "estimate" and value is not None:
            value = dataclasses.astuple(value)
        out.append(repr(value))
    return tuple(out)


@pytest.mark.parametrize("comparator", ["NAT", "TOTAL", "sex=F"])
def test_rows_made_across_nodes_equal_each_nodes_rows_made_one_by_one(comparator: str) -> None:
    plan = _plan(comparator=comparator)
    _, spec = plan.indicator("employment_rate")
    rng = np.random.default_rng(11)
    answers = {f"n{k}": _node(k, spec, rng) for k in range(10)}
    published_rows = _check(plan, answers, "employment_rate")
    assert published_rows > 200  # most rows are published, and some are not
    rows = benchmark_rows(plan, list(answers), answers, pooled=False)
    assert {r.status for r in rows} >= {"published", "suppressed"}
    assert any(r.unknown_share for r in rows) and any("u" in r.flags for r in rows)


def test_the_demos_signed_results_give_the_same_rows_across_nodes() -> None:
    document = json.loads((DEMO / "provenance.json").read_text(encoding="utf-8"))
    for query in document["queries"]:
        kind = kind_of(Query.from_record(query["spec"]))
        answers: dict[str, NodeTables] = {}
        plan = None
        for entry in query["nodes"]:
            result = pb.QueryResult.FromString(base64.b64decode(entry["result"]))
            plan = kind.plan_answered(result)
            answers[entry["node"]] = read_result(result, plan)
        assert plan is not None and len(answers) == 2
        for name in plan.query.indicators:
            if plan.indicator(name)[0].kind == "ratio":
                assert _check(plan, answers, name) > 0


def test_a_row_amended_equals_the_row_replaced_and_refuses_unknown_fields() -> None:
    plan = _plan()
    _, spec = plan.indicator("employment_rate")
    answers = {"n0": _node(0, spec, np.random.default_rng(3))}
    row = benchmark_rows(plan, ["n0"], answers, pooled=False)[0]
    replaced = dataclasses.replace(row, release="r-1", geo_level="city", deviation="x")
    assert row.amended(release="r-1", geo_level="city", deviation="x") == replaced
    assert row.release == ""  # the row itself is unchanged
    with pytest.raises(TypeError, match="no field"):
        row.amended(colour="red")


def test_nodes_estimated_in_batches_of_one_give_the_same_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = _plan()
    _, spec = plan.indicator("employment_rate")
    rng = np.random.default_rng(5)
    answers = {f"n{k}": _node(k, spec, rng) for k in range(6)}
    together = benchmark_rows(plan, list(answers), answers, pooled=False)
    monkeypatch.setattr(across, "BATCH_FLOATS", 1)  # one node per batch
    apart = benchmark_rows(plan, list(answers), answers, pooled=False)
    assert [_fields(r) for r in apart] == [_fields(r) for r in together]


def test_rows_made_with_their_nodes_fields_equal_the_rows_described_after() -> None:
    plan = _plan()
    _, spec = plan.indicator("employment_rate")
    rng = np.random.default_rng(7)
    answers = {f"n{k}": _node(k, spec, rng) for k in range(5)}
    answers["n1"] = dataclasses.replace(
        answers["n1"], source="survey", geo_level="city",
        concepts={"wstatus": "wstatus=self_declared"},
        deviations={"wstatus": "wstatus: self_declared: asked, not registered"},
    )  # fmt: skip
    answers["n2"] = dataclasses.replace(  # its rows' deviation depends on the row
        answers["n2"], concepts={"wstatus": "wstatus=unmapped_as_unknown"}
    )
    order = ["n0", "n1", "n2", "n3", "n4", "silent"]
    gathered = Gathered(order, {}, answers, {"silent": "G9"}, levels={"silent": "city"})
    pooling = Pooling(min_coverage=0.5)
    made = Harmonised(plan, pooling).rows(gathered)
    after = describe_rows(
        benchmark_rows(plan, order, answers, gathered.geos, pooled=pooling),
        plan, answers, pooling, gathered.levels,
    )  # fmt: skip
    assert [_fields(r) for r in made] == [_fields(r) for r in after]
    assert {r.deviation for r in made if r.node == "n1"} == {
        "wstatus=self_declared (asked, not registered)"
    }
    assert all("d" in r.flags for r in made if r.node == "n2")
    assert {r.geo_level for r in made if r.node == "silent"} == {"city"}
    assert any(r.node == "*" and r.status == "published" for r in made)


@pytest.mark.parametrize("share", [True, False])
def test_published_columns_equal_the_scalar_rules_on_every_edge(share: bool) -> None:
    edges = [0.0, -0.0, 0.5, 1.0, 1.5, -0.25, -1.5, 2e-17, math.nan, math.inf, -math.inf]
    x = np.array(edges)
    assert repr(across.percent(x, share)) == repr([_published(v, share) for v in edges])
    gaps = [_gap_fields((v, v, v), share)["gap"] for v in edges]
    assert repr(across.gap_percent(x, share)) == repr(gaps)
    assert repr(across.shown(x)) == repr([v if math.isfinite(v) else None for v in edges])
    rows = np.stack([x, x[::-1]])  # as `_batch` shows its stacked columns: row by row
    assert repr(across._shown_rows(rows)) == repr([across.shown(row) for row in rows])


# Every edge of the rules: thresholds met exactly and missed by one ulp, zero, negative,
# nan and infinite counts, noise and shares, rule sets with thresholds of 0.
EDGE_RULES = [
    *NAMED_RULES.values(),
    DisclosureRules(),
    DisclosureRules(min_count=0, unreliable_below=0, max_cv=0.0, unknown_flag=0.0),
    DisclosureRules(
        min_count=20,
        unreliable_below=20,
        unknown_flag=0.0,
        unknown_suppress=0.0,
        weighted=True,
        certainty=0.5,
    ),
    DisclosureRules(min_count=-5, unreliable_below=30, unknown_suppress=-0.1, certainty=0.999),
]
EDGE_COUNTS = [math.nan, -math.inf, math.inf, -1.0, 0.0, -0.0, 5.0, 9.5, 10.0, 10.5, 20.0,
               25.5, 30.0, 49.0, 50.0, 1e9]  # fmt: skip
EDGE_VARIANCES = [0.0, 1.0, 18.49, 1e6, math.nan, math.inf]
EDGE_SHARES = [math.nan, 0.0, 0.03, 0.2, 0.2000001, 0.5, 0.55, 1.0, -0.1]
EDGE_VALUES = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-300, 0.1, -0.5, 0.75, 2.0]
EDGE_SES = [math.nan, math.inf, 0.0, 1e-300, 0.03, 0.0225, 0.15, 0.3, 1.0]


def _edge_values(
    rng: np.random.Generator, n: int, nodes: int | None = None
) -> dict[str, np.ndarray]:
    """``n`` values' rules' inputs drawn from the edges, with counts on each rule's bars.

    With ``nodes``, value ``i`` is node ``i % nodes``'s: its rules and survey are the node's.
    """
    pick = {
        name: np.array(edges)[rng.integers(0, len(edges), n)]
        for name, edges in (
            ("count", EDGE_COUNTS), ("count_var", EDGE_VARIANCES), ("obs", EDGE_COUNTS),
            ("obs_var", EDGE_VARIANCES), ("unknown", EDGE_SHARES), ("value", EDGE_VALUES),
            ("se", EDGE_SES), ("low", EDGE_VALUES), ("high", EDGE_VALUES),
        )
    }  # fmt: skip
    rule = rng.integers(0, len(EDGE_RULES), nodes or n)
    survey = rng.random(nodes or n) < 0.5
    rule, survey = np.resize(rule, n), np.resize(survey, n)
    for k in range(0, n, 3):  # a third exactly on, or one ulp below, a bar of its rules
        r = EDGE_RULES[rule[k]]
        threshold = (r.min_count, r.unreliable_below)[k % 2]
        sigma = math.sqrt(pick["count_var"][k]) if math.isfinite(pick["count_var"][k]) else 1.0
        pick["count_var"][k] = sigma * sigma
        bar = max(threshold, threshold / 2 + NormalDist().inv_cdf(r.certainty) * sigma + 0.5)
        pick["count"][k] = bar if k % 6 < 3 else math.nextafter(bar, -math.inf)
        pick["obs"][k], pick["obs_var"][k] = pick["count"][k], pick["count_var"][k]
    pick["rule"] = rule
    pick["survey"] = survey
    pick["defined"] = rng.random(n) < 0.8
    return pick


def test_rules_judged_together_equal_each_judged_alone_on_every_edge() -> None:
    """Many values' rules side by side give what each value's own rules give alone."""
    e = _edge_values(np.random.default_rng(7), 30_000)
    rules = [EDGE_RULES[r] for r in e["rule"]]
    columns = RuleColumns.of(rules)
    sigma, obs_sigma = np.sqrt(e["count_var"]), np.sqrt(e["obs_var"])
    x = {name: v.tolist() for name, v in e.items()}
    s, s_obs = sigma.tolist(), obs_sigma.tolist()
    for with_observations in (True, False):
        observations = (e["obs"], obs_sigma, e["survey"]) if with_observations else None
        codes, withheld = columns.judge((e["count"], sigma), observations, e["unknown"])
        cell_flags = columns.estimate_flag(codes, e["value"], e["se"])
        expected, expected_flags = [], []
        for k, r in enumerate(rules):
            observed = Noisy(x["obs"][k], s_obs[k]) if with_observations else None
            judged = r.judge(
                Noisy(x["count"][k], s[k]),
                observed if x["survey"][k] else None,
                None if math.isnan(x["unknown"][k]) else x["unknown"][k],
            )
            expected.append((judged.flag, judged.suppressed))
            expected_flags.append(r.estimate_flag(judged.flag, x["value"][k], x["se"][k]))
        got = [(FLAG_CODES[c], bool(w)) for c, w in zip(codes.tolist(), withheld, strict=True)]
        assert got == expected
        assert [FLAG_CODES[c] for c in cell_flags.tolist()] == expected_flags
        # every outcome occurs: the edges reach each branch of the rules
        assert {f for f, _ in expected} == {"", "u", "c"} and {w for _, w in expected} == {
            True, False
        }  # fmt: skip
        assert len({(f, w) for f, w in expected}) == 4  # c withheld, u withheld, u, none


def test_rates_settled_together_equal_each_settled_alone_on_every_edge() -> None:
    nodes, keys = 500, 40  # as `_batch` stacks them: (groups and cells, nodes)
    e = _edge_values(np.random.default_rng(11), nodes * keys, nodes)
    rules = [EDGE_RULES[r] for r in e["rule"]]
    x = {name: v.tolist() for name, v in e.items()}
    a = {name: v.reshape(keys, nodes) for name, v in e.items()}
    for with_observations in (True, False):
        bases = TableBases(
            (a["count"], a["count_var"]),
            (a["obs"], a["obs_var"]) if with_observations else None,
            a["unknown"],
        )
        codes, withheld = across.settle_columns(
            RuleColumns.of(rules[:nodes]), a["value"], a["se"], bases, e["survey"][:nodes],
            (a["low"], a["high"]), a["defined"],
        )  # fmt: skip
        expected = []
        for k, r in enumerate(rules):
            observed = Noisy(x["obs"][k], math.sqrt(x["obs_var"][k]))
            base = Base(
                Noisy(x["count"][k], math.sqrt(x["count_var"][k])),
                observed if with_observations and x["survey"][k] else None,
                None if math.isnan(x["unknown"][k]) else x["unknown"][k],
            )
            estimate = Estimate(x["value"][k], x["se"][k])
            interval = (x["low"][k], x["high"][k])
            flag, status, _ = across.settle(
                r, estimate, base, interval, defined=x["defined"][k], noisy=False,
                rate=True,
            )  # fmt: skip
            expected.append((flag, status == Status.SUPPRESSED))
        flags = [FLAG_CODES[c] for c in codes.ravel().tolist()]
        assert list(zip(flags, withheld.ravel().tolist(), strict=True)) == expected
        assert len(set(expected)) == 4


def test_selections_summed_together_equal_each_summed_alone_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    values = rng.standard_normal((300, 150)) * 1e3
    values[5, :40] = math.nan
    values[7, 3] = math.inf
    # sizes below, at and over numpy's 8-wide unrolled and 128-wide pairwise blocks
    sizes = [0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 30, 50, 129, 150]
    selections = [np.sort(rng.choice(150, m, replace=False)) for m in sizes for _ in range(4)]
    rng.shuffle(selections)  # sizes interleaved: each selection's sums come back in place
    together = selections_sums(values, selections)
    for at, sums in zip(selections, together, strict=True):
        mask = np.zeros(150, dtype=bool)
        mask[at] = True
        alone = selected_sums(values, mask)
        assert sums.tobytes() == alone.tobytes()
        assert np.array_equal(alone, [row[mask].sum() for row in values], equal_nan=True)


def test_the_largest_design_effect_is_the_same_from_one_mask_or_a_mask_per_row() -> None:
    rng = np.random.default_rng(5)
    edges = np.array([0.0, -0.0, 1.0, 1.4, 2.5, -1.0, math.nan, math.inf, 1e-300])
    deff = edges[rng.integers(0, len(edges), (400, 30))]
    for den in (rng.random(30) < 0.3, np.zeros(30, dtype=bool), np.ones(30, dtype=bool)):
        gathered = estimators._largest_deff(deff, den)  # one mask: its cells gathered
        masked = estimators._largest_deff(deff, np.broadcast_to(den, deff.shape).copy())
        assert np.array_equal(gathered, masked, equal_nan=True)
        assert np.array_equal(gathered > 0, masked > 0)
        expected = [max([0.0, *row[den]]) if not np.isnan(row[den]).any() else math.nan
                    for row in deff]  # fmt: skip
        assert np.array_equal(gathered, expected, equal_nan=True)


def test_a_gradient_with_a_non_finite_entry_has_a_non_finite_variance() -> None:
    # why `_batch` reads a rate as defined from its rate and standard error alone
    rng = np.random.default_rng(9)
    edges = np.array([0.0, -0.0, 1e-300, 2.0, -3.0, 1e200, math.inf, -math.inf, math.nan])
    variance = edges[rng.integers(0, len(edges), (5000, 12))]
    grad = rng.standard_normal((5000, 12)) * 1e3
    grad[np.arange(5000), rng.integers(0, 12, 5000)] = edges[rng.integers(6, 9, 5000)]
    with np.errstate(invalid="ignore", over="ignore"):
        var = estimators.gradient_variance(grad, variance)
    assert not np.isfinite(var).any()


def test_estimates_made_many_at_once_equal_estimates_made_one_by_one() -> None:
    numbers = [0.25, math.nan, -0.0, math.inf, 1e-300]
    columns = (numbers, numbers[::-1], numbers[1:] + numbers[:1], numbers)
    one_by_one = [Estimate(*n) for n in zip(*columns, strict=True)]
    made = Estimate.many(*columns)
    assert repr(made) == repr(one_by_one)
    assert [list(vars(e)) for e in made] == [list(vars(o)) for o in one_by_one]
    assert made[0] == one_by_one[0] and hash(made[0]) == hash(one_by_one[0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        made[0].value = 1.0  # type: ignore[misc]


Found = dict[tuple[tuple[str, ...], bool], list[tuple[np.ndarray, np.ndarray, np.ndarray]]]


def _stacked_one_key_at_a_time(margins: list[tuple[Margin, ...]], tiles: int) -> Found:
    """`Stacked.of` as it was written first: each key's margins looked up table by table."""
    keys = list(dict.fromkeys((m.codes, m.observations) for copy in margins for m in copy))
    found: Found = {}
    for key in keys:
        tables = [margins[k] if k < len(margins) else () for k in range(tiles)]
        per_table = [[m for m in t if (m.codes, m.observations) == key] for t in tables]
        found[key] = []
        for j in range(max(map(len, per_table))):
            present = np.array([len(f) > j for f in per_table])
            width = next(f[j].values.size for f in per_table if len(f) > j)
            values, sigmas = np.zeros((tiles, width)), np.zeros(tiles)
            for k, f in enumerate(per_table):
                if len(f) > j:
                    values[k], sigmas[k] = f[j].values, f[j].sigma
            found[key].append((values, sigmas, present))
    return found


@pytest.mark.parametrize("tiles", [1, 4, 6, 9])
def test_margins_stacked_in_one_pass_equal_margins_stacked_key_by_key(tiles: int) -> None:
    rng = np.random.default_rng(tiles)

    def margin(codes: tuple[str, ...], observations: bool) -> Margin:
        return Margin(codes, observations, rng.standard_normal(4), float(rng.random()))

    a, b, unk = ("EMP", "UNE"), ("EMP",), ("UNK",)
    margins = [
        (margin(a, False), margin(unk, False), margin(a, False)),  # a key twice
        (),
        (margin(a, True), margin(b, False)),
        (margin(unk, False),),
        (margin(b, False), margin(a, False)),
        (margin(("INAC",), False),),  # past the tiles when there are fewer than 6
    ]
    stacked = Stacked.of(margins, tiles)
    expected = _stacked_one_key_at_a_time(margins, tiles)
    assert list(stacked.found) == list(expected)
    for key, parts in expected.items():
        assert len(stacked.found[key]) == len(parts)
        for got, want in zip(stacked.found[key], parts, strict=True):
            for x, y in zip(got, want, strict=True):
                assert x.dtype == y.dtype and x.tobytes() == y.tobytes()


def test_a_gradient_variance_summed_in_scratch_equals_it_summed_in_new_arrays() -> None:
    rng = np.random.default_rng(13)
    edges = np.array([0.0, -0.0, 5e-324, 1e-160, 1.5, -2.5, 1e154, 1e200, math.inf, math.nan])
    spread = rng.standard_normal((300, 40)) * 10.0 ** rng.integers(-5, 5, (300, 40))
    grad = np.where(rng.random((300, 40)) < 0.2, edges[rng.integers(0, 10, (300, 40))], spread)
    variance = np.abs(rng.standard_normal((300, 40)))
    scratch = np.empty(grad.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        fresh = estimators.gradient_variance(grad, variance)
        in_scratch = estimators.gradient_variance(grad, variance, scratch)
    assert fresh.tobytes() == in_scratch.tobytes()
