"""Saved revenue and offer performance (issue 16): matching outcomes to answers, deflections, saved MRR,
rates with Wilson intervals, experiments against their control, the report files, the CLI."""

from __future__ import annotations

import csv
import json
import math
import sqlite3
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reason_classifier.cli.main import app
from reason_classifier.errors import InputError
from reason_classifier.retention import RetentionOptions, compute_retention, open_sources
from reason_classifier.retention.report import write_retention
from reason_classifier.retention.stats import compare, sample_size_per_group, two_proportion_test, wilson_interval

runner = CliRunner()
ANSWER_COLUMNS = [
    "created_at", "request_id", "item", "customer_id", "plan", "mrr", "category", "sub_reason", "offer_id",
    "experiment", "variant",
]  # fmt: skip
ANSWERS = [
    ["2026-05-03", "r1", 0, "c1", "pro", 100, "pricing", "too_expensive", "downgrade", "", ""],
    ["2026-05-10", "r2", 0, "c2", "basic", 20, "pricing", "price_increase", "discount_20", "price", "discount"],
    ["2026-05-11", "r3", 0, "c3", "basic", 30, "pricing", "price_increase", "none", "price", "holdout"],
    ["2026-06-01", "r4", 0, "c4", "pro", 50, "support", "slow_response", "senior_support", "", ""],
    ["2026-06-02", "r5", 0, "c1", "pro", 100, "pricing", "too_expensive", "downgrade", "", ""],
    ["2026-06-03", "r6", 0, "c5", "", "", "other", "unclear", "none", "", ""],
]
OUTCOMES = [
    ["request_id", "customer_id", "outcome", "mrr_kept", "reported_at"],
    ["r1", "", "accepted", 80, "2026-05-03"],  # c1 stayed, then left in June: lost later
    ["r2", "", "accepted", "", "2026-05-10"],  # saved 20 (the answer's MRR)
    ["", "c3", "paused", "", "2026-05-12"],  # by customer id: the latest answer of c3 before it; saved 30
    ["r4", "", "declined", "", "2026-06-01"],
    ["r5", "", "cancelled", "", "2026-06-02"],
    ["r9", "", "accepted", "", "2026-06-02"],  # matches no answer
]


def write_csv(path: Path, rows: list[list]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows(rows)
    return path


@pytest.fixture
def exports(tmp_path) -> tuple[Path, Path]:
    return write_csv(tmp_path / "answers.csv", [ANSWER_COLUMNS, *ANSWERS]), write_csv(
        tmp_path / "outcomes.csv", OUTCOMES
    )


def one(document, **where):
    found = [r for r in document.rows if all(getattr(r, k) == v for k, v in where.items())]
    assert len(found) == 1, (where, found)
    return found[0]


def test_stats_match_statsmodels_and_textbook_values():
    statsmodels = pytest.importorskip("statsmodels.stats.proportion")
    for successes, trials in ((0, 10), (7, 40), (40, 40), (1, 1), (512, 1000)):
        low, high = wilson_interval(successes, trials)
        ref_low, ref_high = statsmodels.proportion_confint(successes, trials, method="wilson")
        assert math.isclose(low, ref_low, abs_tol=1e-12) and math.isclose(high, ref_high, abs_tol=1e-12)
    low, high = wilson_interval(7, 40, 0.9)
    ref = statsmodels.proportion_confint(7, 40, alpha=0.1, method="wilson")
    assert math.isclose(low, ref[0], abs_tol=1e-12) and math.isclose(high, ref[1], abs_tol=1e-12)
    z, p = two_proportion_test(30, 200, 45, 210)
    ref_z, ref_p = statsmodels.proportions_ztest([45, 30], [210, 200])
    assert math.isclose(z, ref_z, rel_tol=1e-12) and math.isclose(p, ref_p, rel_tol=1e-9)
    assert round(z, 6) == 1.682976 and round(p, 6) == 0.09238
    assert sample_size_per_group(0.10, 0.15) == 686  # Fleiss without continuity correction: 685.4
    assert wilson_interval(0, 0) is None and two_proportion_test(0, 0, 1, 2) is None
    assert two_proportion_test(5, 5, 7, 7) is None  # everyone succeeded in both: no variance, no test
    result = compare(30, 200, 45, 210)
    assert result.still_needed_per_group == result.needed_per_group - 200 and not result.significant
    assert compare(300, 2000, 450, 2100).significant


def test_outcomes_are_matched_and_deflections_and_saved_mrr_counted_exactly(exports):
    document = compute_retention(open_sources(*exports))
    s = document.summary
    assert (s.answers_reported, s.outcomes_read, s.outcomes_matched, s.outcomes_unmatched) == (6, 6, 5, 1)
    assert (s.offers_shown, s.accepted, s.deflections, s.saved_mrr, s.saved_revenue) == (4, 2, 2, 50.0, 600.0)
    total = one(document, period="all", segment="all", level="all")
    assert (total.answers, total.offers_shown, total.outcomes, total.accepted) == (6, 4, 5, 2)
    assert (total.declined, total.cancelled, total.paused, total.downgraded) == (1, 1, 1, 0)
    assert (total.deflections, total.lost_later, total.saved_mrr) == (2, 1, 50.0)
    assert total.accept_rate_pct == 50.0 and (total.accept_low_pct, total.accept_high_pct) == (15.0039, 84.9961)
    assert total.save_rate_pct == 33.3333
    may = one(document, period="2026-05", segment="all", level="all")
    assert (may.answers, may.accepted, may.deflections, may.lost_later, may.saved_mrr) == (3, 2, 2, 1, 50.0)
    june = one(document, period="2026-06", segment="all", level="all")
    assert (june.answers, june.offers_shown, june.accepted, june.saved_mrr) == (3, 2, 0, 0.0)
    downgrade = one(document, period="all", segment="all", level="offer", offer="downgrade")
    assert (downgrade.offers_shown, downgrade.accepted, downgrade.deflections, downgrade.lost_later) == (2, 1, 0, 1)
    increase = one(document, period="all", segment="all", level="sub_reason", sub_reason="price_increase")
    assert (increase.category, increase.answers, increase.deflections, increase.saved_mrr) == ("pricing", 2, 2, 50.0)
    assert increase.saved_revenue == 600.0
    assert [(f.step, f.count) for f in document.funnel] == [
        ("cancel started", 7), ("answered", 6), ("offer shown", 4), ("accepted", 2), ("still a customer", 1)
    ]  # fmt: skip
    assert any("1 outcome(s) match no answer" in n for n in document.notes)


def test_segments_periods_horizon_and_range(exports):
    options = RetentionOptions(by=("plan", "mrr:50"), horizon_months=6, since=date(2026, 5, 4), period="quarter")
    document = compute_retention(open_sources(*exports), options)
    assert document.periods == ["2026-Q2"] and document.summary.answers_reported == 5  # r1 (May 3) is before since
    basic = one(document, period="all", segment="plan", segment_value="basic", level="all")
    assert (basic.answers, basic.deflections, basic.saved_mrr, basic.saved_revenue) == (2, 2, 50.0, 300.0)
    assert one(document, period="all", segment="plan", segment_value="(none)", level="all").answers == 1
    assert one(document, period="all", segment="mrr band", segment_value="<50", level="all").answers == 2
    assert one(document, period="all", segment="mrr band", segment_value="50+", level="all").answers == 2
    # r5's cancellation in June makes r1 lost later even when r1 is outside the range: the customer's history counts
    assert document.summary.deflections == 2


def test_experiments_compare_every_variant_with_its_control(tmp_path):
    rows = [ANSWER_COLUMNS]
    outcomes = [["request_id", "outcome"]]
    plan = {"control": (200, 30), "bigger": (210, 45), "holdout": (190, 19)}
    for variant, (answers, saves) in plan.items():
        for i in range(answers):
            request = f"{variant}-{i}"
            offer = "none" if variant == "holdout" else f"offer_{variant}"
            rows.append(["2026-06-10", request, 0, request, "pro", 10, "pricing", "too_expensive", offer, "e", variant])
            if i < saves:
                outcomes.append([request, "paused" if variant == "holdout" else "accepted"])
    document = compute_retention(
        open_sources(write_csv(tmp_path / "a.csv", rows), write_csv(tmp_path / "o.csv", outcomes)),
        RetentionOptions(controls={"e": "control"}),
    )
    [experiment] = document.experiments
    assert experiment.control == "control" and experiment.control_chosen_by == "offers file"
    by_name = {v.variant: v for v in experiment.variants}
    assert [v.variant for v in experiment.variants][0] == "control" and by_name["control"].save_vs_control is None
    bigger = by_name["bigger"]
    assert (bigger.answers, bigger.accepted, bigger.deflections, bigger.saved_mrr) == (210, 45, 45, 450.0)
    assert bigger.save_vs_control.z == round(two_proportion_test(30, 200, 45, 210)[0], 6) == 1.682976
    assert bigger.save_vs_control.p_value == round(two_proportion_test(30, 200, 45, 210)[1], 8)
    assert bigger.save_vs_control.difference_pts == round(100 * (45 / 210 - 30 / 200), 4)
    needed = sample_size_per_group(30 / 200, 45 / 210)
    assert (
        bigger.save_vs_control.needed_per_variant == needed
        and bigger.save_vs_control.still_needed_per_variant == needed - 200
    )
    holdout = by_name["holdout"]
    assert (holdout.offers_shown, holdout.accepted, holdout.accept_rate_pct, holdout.deflections) == (0, 0, 0.0, 19)
    assert holdout.accept_vs_control.variant_pct == 0.0 and holdout.accept_vs_control.significant
    guessed = compute_retention(open_sources(tmp_path / "a.csv", tmp_path / "o.csv"))
    assert guessed.experiments[0].control == "control" and guessed.experiments[0].control_chosen_by == "its name"


def test_the_store_is_read_with_its_outcomes_table(tmp_path, monkeypatch):
    path = tmp_path / "store.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE classified_answers (id INTEGER PRIMARY KEY, created_at DATETIME, request_id TEXT, item INT, "
            "text TEXT, customer_id TEXT, plan TEXT, mrr FLOAT, category TEXT, sub_reason TEXT, offer_id TEXT, "
            "offer_kind TEXT, experiment TEXT, variant TEXT)"
        )
        db.execute(
            "CREATE TABLE offer_outcomes (id INTEGER PRIMARY KEY, created_at DATETIME, request_id TEXT, item INT, "
            "customer_id TEXT, outcome TEXT, mrr_kept FLOAT)"
        )
        db.executemany(
            "INSERT INTO classified_answers (created_at, request_id, item, text, customer_id, plan, mrr, category, "
            "sub_reason, offer_id, offer_kind) VALUES (?, ?, 0, 'x', ?, 'pro', ?, 'pricing', 'too_expensive', ?, ?)",
            [
                ("2026-06-01 10:00:00.000000", "a", "c1", 40.0, "downgrade", "downgrade"),
                ("2026-06-02 10:00:00.000000", "b", "c2", 60.0, "keep_quiet", "none"),  # a kind-none offer: not shown
                ("2026-06-30 23:30:00.000000", "c", "c3", 99.0, "downgrade", "downgrade"),
            ],
        )
        db.executemany(
            "INSERT INTO offer_outcomes (created_at, request_id, item, customer_id, outcome, mrr_kept) "
            "VALUES ('2026-07-01 00:00:00', ?, 0, NULL, ?, ?)",
            [("a", "downgraded", 25.0), ("c", "accepted", None)],
        )
    from reason_classifier.trends.sources import StoreSource

    closed: list[str] = []
    close = StoreSource.close
    monkeypatch.setattr(StoreSource, "close", lambda self: (closed.append(self.table), close(self))[1])
    with open_sources(str(path)) as sources:  # both of the store's tables, released on leaving
        document = compute_retention(sources)
    assert sorted(closed) == ["classified_answers", "offer_outcomes"]
    assert document.outcomes_source == str(path)
    s = document.summary
    assert (s.answers_reported, s.offers_shown, s.accepted, s.deflections, s.saved_mrr) == (3, 2, 1, 2, 124.0)
    assert document.periods == ["2026-06"]  # stored times are UTC: 23:30 on June 30 stays in June


def test_bad_values_are_refused_with_row_and_value(tmp_path, exports):
    answers, _ = exports
    bad = write_csv(tmp_path / "o.csv", [["request_id", "outcome"], ["r1", "accepted"], ["r2", "stayed"]])
    with pytest.raises(InputError, match=r"o.csv, row 2: outcome 'stayed' is not an outcome; outcomes are accepted"):
        compute_retention(open_sources(answers, bad))
    bad = write_csv(tmp_path / "o2.csv", [["request_id", "outcome", "mrr_kept"], ["r1", "accepted", "-5"]])
    with pytest.raises(InputError, match=r"row 1: mrr_kept '-5' is not an MRR"):
        compute_retention(open_sources(answers, bad))
    bad = write_csv(tmp_path / "o3.csv", [["outcome"], ["accepted"]])
    with pytest.raises(InputError, match="needs a request_id or a customer_id column"):
        compute_retention(open_sources(answers, bad))
    rows = [ANSWER_COLUMNS, ANSWERS[0], ["yesterday", *ANSWERS[1][1:]]]
    with pytest.raises(InputError, match=r"row 2: created_at 'yesterday' is not a date or time"):
        compute_retention(open_sources(write_csv(tmp_path / "a.csv", rows)))
    untagged = write_csv(tmp_path / "u.csv", [["created_at", "answer"], ["2026-06-01", "x"]])
    with pytest.raises(InputError, match="no column 'category'"):
        compute_retention(open_sources(untagged))
    with pytest.raises(InputError, match="horizon_months 0 must be a positive"):
        RetentionOptions(horizon_months=0)


def test_without_outcomes_the_report_says_so_and_counts_offers(exports):
    answers, _ = exports
    document = compute_retention(open_sources(answers))
    assert document.summary.offers_shown == 4 and document.summary.saved_mrr == 0
    assert any("no outcomes yet" in n for n in document.notes)


def test_cli_writes_the_three_files_and_prints_json(exports, tmp_path):
    answers, outcomes = exports
    offers = tmp_path / "offers.yaml"
    offers.write_text(
        "offers:\n  none: {kind: none}\n  d: {kind: discount}\nexperiments:\n  price:\n    control: holdout\n"
        "    variants: {discount: {offer: d}, holdout: {offer: none}}\n",
        encoding="utf-8",
    )
    result = runner.invoke(
        app,
        ["retention", str(answers), "--outcomes", str(outcomes), "-o", str(tmp_path / "out"), "--offers", str(offers),
         "--json", "--horizon-months", "3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["summary"]["saved_revenue"] == 150.0 and printed["experiments"][0]["control"] == "holdout"
    for name in ("retention.csv", "retention.json", "report.html"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    with open(tmp_path / "out" / "retention.csv", encoding="utf-8") as file:
        first = next(csv.DictReader(file))
    assert (first["period"], first["level"], first["answers"], first["saved_mrr"]) == ("all", "all", "6", "50.0")
    bad = runner.invoke(app, ["retention", str(answers), "-o", str(tmp_path / "x"), "--period", "year"])
    assert bad.exit_code == 2 and "period 'year' is not one of week, month, quarter" in bad.output


@pytest.mark.browser
def test_report_renders_in_chromium_with_the_funnel_and_no_network(exports, tmp_path):
    from tests.browser import render

    document = compute_retention(open_sources(*exports), RetentionOptions(by=("plan",)))
    paths = write_retention(document, tmp_path / "out")
    page = render(
        paths["html"],
        {
            "charts": ".js-plotly-plot",
            "funnel steps": "#chart-funnel .funnellayer .point",
            "bars": "#chart-saved .bars",
            "experiments": "table.experiment-table",
            "segments": "section.segment table",
        },
    )
    assert page.console_errors == [] and page.page_errors == [] and page.network_requests == []
    assert page.counts["charts"] == 3 and page.counts["funnel steps"] == 5 and page.counts["bars"] >= 1
    assert page.counts["experiments"] == 1 and page.counts["segments"] == 1


def test_the_trends_report_links_to_the_retention_report_of_the_same_answers_and_back(exports, tmp_path):
    from reason_classifier.trends import TrendOptions, compute_trends, write_trends

    answers, outcomes = exports
    out = tmp_path / "reports"
    write_retention(compute_retention(open_sources(answers, outcomes)), out / "retention")
    write_trends(compute_trends(answers, TrendOptions(examples=0)), out)
    assert "href='retention/report.html'" in (out / "report.html").read_text(encoding="utf-8")
    write_retention(compute_retention(open_sources(answers, outcomes)), out / "retention")
    assert "href='../report.html'" in (out / "retention" / "report.html").read_text(encoding="utf-8")
    alone = tmp_path / "alone"
    write_trends(compute_trends(answers, TrendOptions(examples=0)), alone)
    assert "retention-link" not in (alone / "report.html").read_text(encoding="utf-8")
