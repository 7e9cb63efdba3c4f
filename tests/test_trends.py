"""Reason trends (issue 6): periods, shares, revenue, segments, sources, errors, CLI, endpoint and report."""

from __future__ import annotations

import csv
import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from reason_classifier.cli.main import app
from reason_classifier.errors import InputError
from reason_classifier.trends import Period, Segment, TrendOptions, compute_trends, write_trends

runner = CliRunner()
TAG_COLUMNS = ["category", "sub_reason", "confidence", "language", "error"]
REASONS = [
    ("pricing", "too_expensive"),
    ("product", "bugs_performance"),
    ("support", "slow_response"),
    ("market", "budget_cuts"),
    ("other", "unclear"),
]


def write_export(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    columns = columns or ["customer_id", "cancelled_at", "plan", "mrr", "answer", *TAG_COLUMNS]
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


def row(
    when: str,
    category: str = "pricing",
    sub_reason: str | None = None,
    mrr: object = 10,
    plan: str = "pro",
    answer: str = "an answer",
    error: str = "",
    **extra: object,
) -> dict:
    sub = sub_reason if sub_reason is not None else dict(REASONS)[category]
    return {
        "cancelled_at": when,
        "category": category,
        "sub_reason": "" if error else sub,
        "mrr": mrr,
        "plan": plan,
        "answer": answer,
        "error": error,
        "confidence": 0.8,
        "language": "en",
        **extra,
    }


def generated(n: int = 400, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    start = date(2026, 1, 1)
    rows = []
    for i in range(n):
        day = start + timedelta(days=rng.randrange(180))
        category, sub = rng.choice(REASONS)
        rows.append(
            row(
                f"{day.isoformat()}T{rng.randrange(24):02d}:15:00Z",
                category,
                sub,
                mrr=rng.choice([9, 29, 99, 499]),
                plan=rng.choice(["starter", "pro", "business"]),
                answer=f"{sub} answer {i}",
                tenure_months=rng.randrange(0, 40),
                contract=rng.choice(["monthly", "annual"]),
            )
        )
    return rows


def frame(tmp_path: Path, rows: list[dict], columns: list[str] | None = None, **options: object) -> pd.DataFrame:
    return compute_trends(write_export(tmp_path / "export.csv", rows, columns), TrendOptions(**options)).rows


def pick(rows: pd.DataFrame, **where: object) -> pd.DataFrame:
    mask = pd.Series(True, index=rows.index)
    for column, value in where.items():
        mask &= rows[column].isna() if value is None else rows[column] == value
    return rows[mask]


# ---------------------------------------------------------------- periods


def test_periods_weeks_start_on_monday_and_are_named_by_iso_week():
    assert Period.WEEK.start_of(date(2026, 3, 29)) == date(2026, 3, 23)  # a Sunday
    assert Period.WEEK.start_of(date(2026, 3, 30)) == date(2026, 3, 30)
    assert Period.WEEK.label(Period.WEEK.start_of(date(2027, 1, 1))) == "2026-W53"
    assert Period.QUARTER.starts_between(date(2025, 12, 31), date(2026, 4, 1)) == [
        date(2025, 10, 1),
        date(2026, 1, 1),
        date(2026, 4, 1),
    ]
    assert Period.MONTH.end_of(date(2028, 2, 1)) == date(2028, 2, 29)
    assert [Period.QUARTER.label(d) for d in (date(2026, 1, 1), date(2026, 10, 1))] == ["2026-Q1", "2026-Q4"]


def test_period_boundaries_and_time_zones(tmp_path):
    rows = [
        row("2026-05-31T23:30:00-04:00"),  # 03:30 UTC on 1 June; still 31 May in New York
        row("2026-06-01 00:30"),  # no offset: a local time of the report's zone
        row("2026-03-29"),
        row("2026-03-30"),  # Sunday, Monday
        row("2026-03-31T23:59:59+00:00"),
        row("2026-04-01T00:00:00+00:00"),
    ]
    utc = frame(tmp_path, rows, period="month")
    counts = pick(utc, segment="all", level="category", category="pricing").set_index("period")["answers"].to_dict()
    assert counts == {"2026-03": 3, "2026-04": 1, "2026-05": 0, "2026-06": 2}
    new_york = frame(tmp_path, rows, period="month", timezone="America/New_York")
    counts = (
        pick(new_york, segment="all", level="category", category="pricing").set_index("period")["answers"].to_dict()
    )
    assert counts == {"2026-03": 4, "2026-04": 0, "2026-05": 1, "2026-06": 1}  # 00:00 UTC on 1 April is 31 March there
    tokyo = frame(tmp_path, rows, period="quarter", timezone="Asia/Tokyo")  # 23:59:59 UTC on 31 March is April in Tokyo
    counts = pick(tokyo, segment="all", level="category", category="pricing").set_index("period")["answers"].to_dict()
    assert counts == {"2026-Q1": 2, "2026-Q2": 4}
    weeks = frame(tmp_path, rows[2:4], period="week")
    assert pick(weeks, segment="all", level="category", category="pricing")[["period", "answers"]].values.tolist() == [
        ["2026-W13", 1],
        ["2026-W14", 1],
    ]


def test_since_and_until_are_inclusive_days_and_list_empty_edge_periods(tmp_path):
    rows = [row("2026-02-10"), row("2026-02-28T23:00:00Z"), row("2026-03-01"), row("2026-04-02")]
    document = compute_trends(
        write_export(tmp_path / "e.csv", rows), TrendOptions(since=date(2026, 1, 15), until=date(2026, 2, 28))
    ).document
    assert [(p.period, p.answers) for p in document.periods] == [("2026-01", 0), ("2026-02", 2)]
    assert document.summary.rows_outside_range == 2 and document.summary.rows_reported == 2


# ---------------------------------------------------------------- numbers


def test_shares_sum_to_100_per_period_segment_and_level(tmp_path):
    rows = frame(tmp_path, generated(), by=("plan",), period="week")
    for (segment, value, period, level), group in rows.groupby(["segment", "segment_value", "period", "level"]):
        if group["answers"].sum():
            assert group["share_pct"].sum() == pytest.approx(100, abs=1e-2), (segment, value, period, level)
            assert group["revenue_share_pct"].sum() == pytest.approx(100, abs=1e-2)
        else:
            assert (group["share_pct"] == 0).all()
    categories = pick(rows, segment="all", level="category").groupby("period")["answers"].sum()
    subs = pick(rows, segment="all", level="sub_reason").groupby("period")["answers"].sum()
    assert categories.equals(subs) and categories.sum() == 400


def test_revenue_weighting_and_missing_weights(tmp_path):
    rows = [
        row("2026-06-01", "pricing", mrr=10),
        row("2026-06-02", "pricing", mrr=10),
        row("2026-06-03", "pricing", mrr=10),
        row("2026-06-04", "support", mrr=970),
        row("2026-06-05", "market", mrr=""),
    ]
    document = compute_trends(write_export(tmp_path / "e.csv", rows), TrendOptions()).document
    table = {r.category: r for r in document.rows if r.level == "category"}
    assert (
        table["pricing"].share_pct == 60
        and table["pricing"].revenue_lost == 30
        and table["pricing"].revenue_share_pct == 3
    )
    assert table["support"].share_pct == 20 and table["support"].revenue_share_pct == 97
    assert table["market"].answers == 1 and table["market"].revenue_lost == 0 and table["market"].weight_missing == 1
    assert document.columns.weight == "mrr"  # found by name
    assert document.periods[0].revenue_lost == 1000 and document.summary.weight_missing == 1
    assert any("without mrr" in note for note in document.notes)
    counts_only = compute_trends(tmp_path / "e.csv", TrendOptions(weight=None)).document
    assert counts_only.columns.weight is None and all(r.revenue_lost is None for r in counts_only.rows)


def test_unclassified_rows_count_as_other_and_keep_their_revenue(tmp_path):
    rows = [row("2026-06-01", "pricing"), row("2026-06-02", "other", error="empty answer", answer="", mrr=50)]
    rows_out = frame(tmp_path, rows)
    unclassified = pick(rows_out, level="sub_reason", sub_reason="unclassified").iloc[0]
    assert unclassified["category"] == "other" and unclassified["answers"] == 1 and unclassified["revenue_lost"] == 50
    assert unclassified["share_pct"] == 50 and unclassified["revenue_share_pct"] == pytest.approx(
        100 * 50 / 60, abs=1e-3
    )


def test_empty_periods_appear_with_zeros_and_changes_use_the_previous_period(tmp_path):
    rows = [row("2026-01-05", "pricing"), row("2026-01-06", "support"), row("2026-03-02", "pricing")]
    rows_out = frame(tmp_path, rows)
    pricing = pick(rows_out, segment="all", level="category", category="pricing")
    assert pricing["period"].tolist() == ["2026-01", "2026-02", "2026-03"]
    assert pricing["answers"].tolist() == [1, 0, 1]
    assert pricing["share_pct"].tolist() == [50, 0, 100]
    assert pd.isna(pricing["share_change_pts"].iloc[0])
    assert pricing["share_change_pts"].tolist()[1:] == [-50, 100]


def test_segments_and_bands(tmp_path):
    data = generated(300)
    columns = ["customer_id", "cancelled_at", "plan", "contract", "tenure_months", "mrr", "answer", *TAG_COLUMNS]
    report = compute_trends(
        write_export(tmp_path / "e.csv", data, columns), TrendOptions(by=("plan", "contract", "tenure_months:3,12,24"))
    )
    rows = report.rows
    assert report.document.columns.segments == ["plan", "contract", "tenure_months band"]
    assert set(pick(rows, segment="plan")["segment_value"]) == {"business", "pro", "starter"}
    assert set(pick(rows, segment="tenure_months band")["segment_value"]) == {"<3", "3-12", "12-24", "24+"}
    for segment in ("plan", "contract", "tenure_months band"):
        by_value = pick(rows, segment=segment, level="category")["answers"].sum()
        assert by_value == 300
    expected = sum(1 for r in data if r["plan"] == "pro" and r["category"] == "pricing")
    assert (
        pick(rows, segment="plan", segment_value="pro", level="category", category="pricing")["answers"].sum()
        == expected
    )
    low = sum(1 for r in data if r["tenure_months"] < 3)
    assert pick(rows, segment="tenure_months band", segment_value="<3", level="category")["answers"].sum() == low


def test_top_movers_and_examples_of_rising_reasons(tmp_path):
    rows = [row(f"2026-05-{d:02d}", "pricing", answer=f"expensive {d}") for d in range(1, 9)]
    rows += [row("2026-05-10", "support")]
    rows += [row(f"2026-06-{d:02d}", "support", answer=f"nobody answered {d}") for d in range(1, 7)]
    rows += [row("2026-06-10", "pricing")]
    document = compute_trends(write_export(tmp_path / "e.csv", rows), TrendOptions(examples=2)).document
    movers = {m.sub_reason: m.share_change_pts for m in document.top_movers}
    assert movers["slow_response"] == pytest.approx(100 * 6 / 7 - 100 / 9, abs=1e-3)
    assert movers["too_expensive"] < 0
    [support] = document.examples
    assert support.sub_reason == "slow_response" and len(support.answers) == 2
    assert all(a.startswith("nobody answered") for a in support.answers)


# ---------------------------------------------------------------- errors


def test_missing_columns_name_the_columns_there_are(tmp_path):
    path = write_export(tmp_path / "e.csv", [row("2026-06-01")], ["when", "mrr", "answer", *TAG_COLUMNS])
    with pytest.raises(InputError, match=r"cancellation date.*'when'"):
        compute_trends(path)
    with pytest.raises(InputError, match=r"no column 'closed_on' for the date; the columns are: 'when'"):
        compute_trends(path, TrendOptions(date_column="closed_on"))
    with pytest.raises(InputError, match=r"no column 'revenue' for the weight.*'mrr'"):
        compute_trends(path, TrendOptions(date_column="when", weight="revenue"))
    with pytest.raises(InputError, match=r"no column 'plan' for a segment"):
        compute_trends(path, TrendOptions(date_column="when", by=("plan",)))
    untagged = write_export(tmp_path / "u.csv", [row("2026-06-01")], ["cancelled_at", "answer"])
    with pytest.raises(InputError, match="tagged export"):
        compute_trends(untagged)


def test_bad_dates_and_weights_name_the_row_and_the_value(tmp_path):
    rows = [row("2026-06-01", answer="line one\nline two"), row("2026-06-02"), row("31/06/2026"), row("yesterday")]
    path = write_export(tmp_path / "e.csv", rows)
    with pytest.raises(InputError, match=r"row 3: cancelled_at '31/06/2026' is not a date or time \(1 more row"):
        compute_trends(path)
    path = write_export(tmp_path / "d.csv", [row("01/06/2026"), row("31/06/2026"), row("30/06/2026")])
    with pytest.raises(InputError, match=r"row 2: cancelled_at '31/06/2026' .*--date-format '%d/%m/%Y'"):
        compute_trends(path, TrendOptions(date_format="%d/%m/%Y"))  # 31 June does not exist
    path = write_export(tmp_path / "w.csv", [row("2026-06-01"), row("2026-06-02", mrr="$49")])
    with pytest.raises(InputError, match=r"row 2: mrr '\$49' is not a revenue amount"):
        compute_trends(path)
    path = write_export(
        tmp_path / "c.csv", [row("2026-06-01"), row("2026-06-02", category="pricng", sub_reason="too_expensive")]
    )
    with pytest.raises(InputError, match=r"row 2: category 'pricng' is not a category"):
        compute_trends(path)


def test_bad_values_are_located_in_jsonl_and_excel_exports_too(tmp_path):
    table = pd.DataFrame([row("2026-06-01"), row("2026-06-02"), row("June 3rd")])[["cancelled_at", "mrr", *TAG_COLUMNS]]
    table.to_json(tmp_path / "e.jsonl", orient="records", lines=True)
    table.to_excel(tmp_path / "e.xlsx", index=False)
    for name in ("e.jsonl", "e.xlsx"):
        with pytest.raises(InputError, match=r"row 3: cancelled_at 'June 3rd' is not a date"):
            compute_trends(tmp_path / name)


def test_date_format_empty_dates_and_bad_options(tmp_path):
    path = write_export(tmp_path / "e.csv", [row("24-02-2015 11:15"), row("01-03-2015 09:00"), row("")])
    document = compute_trends(path, TrendOptions(date_format="%d-%m-%Y %H:%M")).document
    assert [p.period for p in document.periods] == ["2015-02", "2015-03"]
    assert document.summary.rows_without_date == 1 and "without a date" in document.notes[0]
    with pytest.raises(InputError, match="unknown time zone 'Mars/Olympus'"):
        TrendOptions(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="period 'year'"):
        TrendOptions(period="year")
    with pytest.raises(InputError, match="increasing"):
        Segment.parse("tenure:12,3")


# ---------------------------------------------------------------- sources


def test_every_export_format_gives_the_same_numbers(tmp_path):
    data = generated(120)
    csv_path = write_export(tmp_path / "e.csv", data)
    expected = compute_trends(csv_path, TrendOptions(by=("plan",))).document.rows
    table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    table.to_parquet(tmp_path / "e.parquet")
    table.to_json(tmp_path / "e.jsonl", orient="records", lines=True, force_ascii=False)
    table.to_excel(tmp_path / "e.xlsx", index=False)
    (tmp_path / "e.tsv").write_text(csv_path.read_text().replace(",", "\t"))
    for name in ("e.parquet", "e.jsonl", "e.xlsx", "e.tsv"):
        assert compute_trends(tmp_path / name, TrendOptions(by=("plan",))).document.rows == expected, name


def test_parquet_with_typed_columns_and_row_numbers(tmp_path):
    table = pd.DataFrame(
        {
            "cancelled_at": pd.to_datetime(["2026-05-31T23:30:00Z", "2026-06-15T10:00:00Z"], utc=True),
            "mrr": [10.0, None],
            "category": ["pricing", "support"],
            "sub_reason": ["too_expensive", "slow_response"],
            "error": [None, None],
        }
    )
    table.to_parquet(tmp_path / "t.parquet")
    document = compute_trends(tmp_path / "t.parquet", TrendOptions(timezone="Europe/Berlin")).document
    assert [(p.period, p.answers) for p in document.periods] == [("2026-06", 2)]  # 01:30 on 1 June in Berlin
    table["mrr"] = ["10", "-5"]
    table.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match=r"row 2: mrr '-5'"):
        compute_trends(tmp_path / "bad.parquet")


def _store_rows(data: list[dict]) -> list[dict]:
    rows = []
    for i, r in enumerate(data):
        when = datetime.fromisoformat(r["cancelled_at"].replace("Z", "+00:00")).astimezone(UTC)
        rows.append(
            {
                "created_at": when,
                "request_id": f"r{i}",
                "item": 0,
                "text": r["answer"],
                "customer_id": f"c{i}",
                "plan": r["plan"],
                "mrr": float(r["mrr"]),
                "language_given": None,
                "metadata": {"contract": r["contract"]},
                "category": r["category"],
                "sub_reason": r["sub_reason"],
                "confidence": 0.8,
                "sub_reason_confidence": 0.7,
                "scores": {},
                "abstained": False,
                "language": "en",
                "offer_id": "none",
                "alert_team": None,
                "model_version": "test",
            }
        )
    return rows


def test_sqlite_store_as_source_gives_the_numbers_of_the_same_export(tmp_path):
    from reason_classifier.service.store import AnswerStore

    data = generated(150)
    store = AnswerStore(str(tmp_path / "answers.db"))
    store.add(_store_rows(data))
    store.flush()
    store.close()
    # Not UTC: the store's times are UTC and must be converted like the export's, not read as local times.
    zone = "America/New_York"
    from_store = compute_trends(
        tmp_path / "answers.db", TrendOptions(by=("plan", "metadata.contract"), timezone=zone)
    ).document
    assert from_store.columns.date == "created_at" and from_store.columns.weight == "mrr"
    export = write_export(tmp_path / "e.csv", data, ["cancelled_at", "plan", "contract", "mrr", "answer", *TAG_COLUMNS])
    from_export = compute_trends(export, TrendOptions(by=("plan", "contract"), timezone=zone)).document
    strip = lambda rows: [r.model_dump(exclude={"segment"}) for r in rows]  # noqa: E731
    assert strip(from_store.rows) == strip(from_export.rows)
    assert {r.segment for r in from_store.rows} == {"all", "plan", "metadata.contract"}
    with pytest.raises(InputError, match=r"no column 'tier'.*'created_at'"):
        compute_trends(tmp_path / "answers.db", TrendOptions(by=("tier",)))


# ---------------------------------------------------------------- CLI, service, report


def test_cli_writes_csv_json_and_html_and_fails_clearly(tmp_path):
    export = write_export(tmp_path / "e.csv", generated(200))
    result = runner.invoke(app, ["trends", str(export), "-o", str(tmp_path / "out"), "--by", "plan", "--no-emerging"])
    assert result.exit_code == 0, result.output
    assert "revenue share" in result.output and "report.html" in result.output
    document = json.loads((tmp_path / "out" / "trends.json").read_text())
    with open(tmp_path / "out" / "trends.csv", encoding="utf-8") as file:
        table = list(csv.DictReader(file))
    assert len(table) == len(document["rows"]) and table[0]["segment"] == "all"
    assert (tmp_path / "out" / "report.html").stat().st_size > 1_000_000  # plotly inlined
    result = runner.invoke(app, ["trends", str(export), "-o", str(tmp_path / "x"), "--date-column", "when"])
    assert result.exit_code == 2 and "no column 'when'" in result.output and "'cancelled_at'" in result.output
    result = runner.invoke(app, ["trends", str(export), "-o", str(tmp_path / "x"), "--since", "June"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output


def test_endpoint_matches_the_cli_on_the_same_store(tiny_classifier, tmp_path):
    from reason_classifier.service.store import AnswerStore
    from tests.service_helpers import running

    database = tmp_path / "store.db"
    seed_store = AnswerStore(str(database))
    seed_store.add(_store_rows(generated(150, seed=3)))
    seed_store.flush()
    seed_store.close()
    with running(tiny_classifier, store=str(database)) as client:
        client.post("/v1/classify", json={"text": "Too expensive for us", "plan": "pro", "mrr": 49})
        client.app.state.service.store.flush()
        response = client.get("/v1/trends", params={"period": "month", "by": ["plan"]})
        assert response.status_code == 200, response.text
        served = response.json()
        bad = client.get("/v1/trends", params={"by": "tier"})
        assert bad.status_code == 422 and "'tier' is not a segment" in bad.json()["error"]["message"]
    result = runner.invoke(app, ["trends", str(database), "-o", str(tmp_path / "out"), "--by", "plan", "--no-emerging"])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "out" / "trends.json").read_text())
    assert served["rows"] == written["rows"] and served["periods"] == written["periods"]
    assert served["summary"]["rows_reported"] == 151 and served["examples"] == []
    with running(tiny_classifier) as client:
        assert client.get("/v1/trends").json()["error"]["code"] == "no_store"


def test_endpoint_segments_only_by_the_allow_list_and_never_quotes_stored_values(tiny_classifier, tmp_path):
    """Observed: by=text and by=customer_id listed every stored answer and customer id; weight=text quoted one."""
    from reason_classifier.service.store import AnswerStore
    from tests.service_helpers import running

    data = generated(60, seed=4)
    rows = _store_rows(data)
    for i, r in enumerate(rows):
        r["text"] = f"private answer {i}"
        r["metadata"] = {"contract": r["metadata"]["contract"], "email": f"person{i}@example.com", "tenure": "long"}
    database = tmp_path / "store.db"
    seed_store = AnswerStore(str(database))
    seed_store.add(rows)
    seed_store.flush()
    seed_store.close()
    with running(tiny_classifier, store=str(database), trends_metadata_keys=["contract", "tenure"]) as client:
        refused = [
            client.get("/v1/trends", params=params)
            for params in (
                {"by": "text"},
                {"by": "customer_id"},
                {"by": "request_id"},
                {"by": "metadata.email"},
                {"by": "mrr"},
                {"weight": "text"},
                {"weight": "customer_id"},
                {"by": "metadata.tenure:1,2"},
            )
        ]
        assert [r.status_code for r in refused] == [422] * 8
        assert [r.json()["error"]["field"] for r in refused] == ["by"] * 5 + ["weight", "weight", "metadata.tenure"]
        assert refused[0].json()["error"]["code"] == "segment_not_allowed"
        assert refused[-1].json()["error"]["code"] == "unreadable_values"
        for response in refused:
            assert (
                "private answer" not in response.text
                and "example.com" not in response.text
                and "'long'" not in response.text
            )
            assert not any(f"c{i}" in response.text.split() for i in range(60))
        allowed = client.get("/v1/trends", params={"by": ["plan", "language", "metadata.contract", "mrr:50,200"]})
        assert allowed.status_code == 200, allowed.text
        values = {(r["segment"], r["segment_value"]) for r in allowed.json()["rows"]}
        assert {s for s, _ in values} == {"all", "plan", "language", "metadata.contract", "mrr band"}
        assert "private answer" not in allowed.text and "example.com" not in allowed.text


def test_a_lone_surrogate_in_metadata_is_cleaned_on_the_way_in_and_tolerated_on_the_way_out(tiny_classifier, tmp_path):
    """Observed: a stored metadata value with a lone surrogate made `by=metadata.KEY` answer 500 forever, and the CLI
    crash."""
    from reason_classifier.service.store import AnswerStore
    from tests.service_helpers import running

    database = tmp_path / "store.db"
    seed_store = AnswerStore(str(database))
    seed_store.add(_store_rows(generated(30, seed=6)))
    seed_store.flush()
    with seed_store.engine.begin() as connection:  # as an older version stored it
        connection.exec_driver_sql(
            """UPDATE classified_answers SET metadata = '{"contract": "an\\ud800nual"}' WHERE id = 1"""
        )
    seed_store.close()
    with running(tiny_classifier, store=str(database), trends_cache_seconds=0) as client:
        sent = client.post(
            "/v1/classify",
            content=b'{"text": "too expensive", "metadata": {"contract": "mon\\udc00thly", "\\ud800": 1}}',
            headers={"content-type": "application/json"},
        )
        assert sent.status_code == 200, sent.text
        store = client.app.state.service.store
        store.flush()
        assert store.rows()[-1]["metadata"] == {"contract": "mon\ufffdthly", "\ufffd": 1}
        for _ in range(2):
            response = client.get("/v1/trends", params={"by": "metadata.contract"})
            assert response.status_code == 200, response.text
        values = {r["segment_value"] for r in response.json()["rows"] if r["segment"] == "metadata.contract"}
        assert {"an\ufffdnual", "mon\ufffdthly", "annual", "monthly"} <= values
    result = runner.invoke(
        app, ["trends", str(database), "-o", str(tmp_path / "out"), "--by", "metadata.contract", "--no-emerging"]
    )
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("cache_seconds", "second_count"), [(60.0, 1), (0.0, 2)])
def test_endpoint_reuses_an_answer_for_the_cache_time_only(tiny_classifier, tmp_path, cache_seconds, second_count):
    from tests.service_helpers import running

    with running(tiny_classifier, store=str(tmp_path / "store.db"), trends_cache_seconds=cache_seconds) as client:
        for expected in (1, second_count):
            client.post("/v1/classify", json={"text": "Too expensive for us", "plan": "pro", "mrr": 49})
            client.app.state.service.store.flush()
            assert client.get("/v1/trends").json()["summary"]["rows_reported"] == expected


@pytest.mark.browser
def test_report_renders_in_chromium_with_its_charts_and_no_network(tmp_path):
    from tests.browser import render

    export = write_export(
        tmp_path / "e.csv", generated(300), ["cancelled_at", "plan", "contract", "mrr", "answer", *TAG_COLUMNS]
    )
    report = compute_trends(export, TrendOptions(by=("plan", "contract")))
    paths = write_trends(report, tmp_path / "out")
    page = render(
        paths["html"],
        {
            "charts": ".js-plotly-plot",
            "area": "#chart-shares .scatterlayer .trace",
            "bars": "#chart-revenue .bars",
            "movers": "#chart-movers",
            "segment tables": "table.segment-table",
            "examples": ".example blockquote",
        },
    )
    assert page.console_errors == [] and page.page_errors == [] and page.network_requests == []
    assert page.counts["charts"] == 4 and page.counts["area"] == 5 and page.counts["bars"] >= 1
    assert page.counts["movers"] == 1 and page.counts["segment tables"] == 2 and page.counts["examples"] >= 1


@pytest.mark.slow
def test_emerging_reasons_cluster_answers_far_from_every_sub_reason(classifier):
    """On the shipped model: how far an answer is from the taxonomy is a matter of meaning ("too expensive" is near)."""
    from reason_classifier.trends.emerging import find_emerging_reasons

    texts = (
        [f"We need EU data residency for GDPR compliance, region {i}" for i in range(25)]
        + [f"The airline lost my luggage again on flight {i}" for i in range(25)]
        + ["too expensive"] * 20
    )
    result = find_emerging_reasons(texts, classifier, period="2026-06", answers_in_period=140, far_below=0.5)
    assert result.sampled == 70 and "70 of 140" in (result.note or "")
    assert result.far >= 40
    keywords = [set(r.keywords) for r in result.reasons]
    assert any({"gdpr", "residency"} <= k for k in keywords) and any({"luggage", "airline"} <= k for k in keywords)
    assert all(len(r.examples) == 3 for r in result.reasons)
    assert find_emerging_reasons([], classifier, period="2026-06", answers_in_period=0).reasons == []


def test_a_partial_last_period_is_said_and_until_reports_up_to_the_last_complete_one(tmp_path):
    path = write_export(
        tmp_path / "e.csv",
        [row("2026-05-10"), row("2026-06-02", "support"), row("2026-06-30"), row("2026-07-03", "product")],
    )
    partial = compute_trends(path).document
    note = next(n for n in partial.notes if "is partial" in n)
    assert "2026-07" in note and "--until 2026-06-30" in note
    complete = compute_trends(path, TrendOptions(until=date(2026, 6, 30))).document
    assert [p.period for p in complete.periods] == ["2026-05", "2026-06"]
    assert not any("is partial" in n for n in complete.notes)


def test_a_span_of_more_periods_than_can_be_listed_is_refused_with_the_span(tmp_path):
    export = write_export(tmp_path / "e.csv", [row("2026-02-10")])
    with pytest.raises(InputError, match=r"1686-01-01 to 2026-02-10 is 4,082 months"):
        compute_trends(export, TrendOptions(since=date(1686, 1, 1)))
    assert [
        p.period for p in compute_trends(export, TrendOptions(since=date(2016, 3, 1), period="month")).document.periods
    ][:2] == ["2016-03", "2016-04"]


def test_periods_are_counted_as_they_are_listed():
    for period in Period:
        for first, last in [
            (date(2024, 12, 30), date(2026, 1, 4)),
            (date(2026, 3, 31), date(2026, 4, 1)),
            (date(2020, 1, 1), date(2020, 1, 1)),
        ]:
            assert period.count_between(first, last) == len(period.starts_between(first, last)), (period, first, last)


def test_other_is_shown_apart_from_the_rising_reasons(tmp_path):
    rows = [row(f"2026-05-{d:02d}", "pricing", answer=f"expensive {d}") for d in range(1, 9)]
    rows += [row("2026-05-10", "other"), row("2026-05-11", "support")]
    rows += [row(f"2026-06-{d:02d}", "other", answer=f"no idea {d}") for d in range(1, 7)]
    rows += [row(f"2026-06-{d:02d}", "support", answer=f"nobody answered {d}") for d in range(10, 13)]
    rows += [row("2026-06-20", "other", error="empty answer"), row("2026-06-21", "pricing")]
    report = compute_trends(write_export(tmp_path / "e.csv", rows), TrendOptions(examples=2))
    document = report.document
    # other / unclear rose the most, but nobody can act on it: not a mover, no examples
    assert {m.category for m in document.top_movers} == {"support", "pricing"}
    assert [e.sub_reason for e in document.examples] == ["slow_response"]
    # ... it is listed apart, with its change (and so is the row the tagger could not read)
    apart = {m.sub_reason: m.share_change_pts for m in document.other_movers}
    assert apart["unclear"] == pytest.approx(100 * 6 / 11 - 100 / 10, abs=1e-3)
    assert apart["unclassified"] == pytest.approx(100 / 11, abs=1e-3)
    page = write_trends(report, tmp_path / "out")["html"].read_text(encoding="utf-8")
    movers_section = page.split("Answers the model could not place")[0]
    assert "other / unclear" not in movers_section.split("Top movers of the last period")[-1]
    apart_html = page.split("<div id=other-movers>")[1].split("</div>")[0]
    assert "other / unclear" in apart_html and "other / unclassified" in apart_html


# ---------------------------------------------------------------- library entry points the CLI only calls


def test_a_store_the_report_opened_is_closed_even_when_a_column_is_missing(tmp_path, monkeypatch):
    from reason_classifier.service.store import AnswerStore
    from reason_classifier.trends.sources import StoreSource

    store = AnswerStore(str(tmp_path / "answers.db"))
    store.add(_store_rows(generated(20)))
    store.flush()
    store.close()
    closed: list[StoreSource] = []
    original = StoreSource.close
    monkeypatch.setattr(StoreSource, "close", lambda self: (closed.append(self), original(self))[1])
    with pytest.raises(InputError, match="no column 'tier'"):
        compute_trends(tmp_path / "answers.db", TrendOptions(by=("tier",)))
    assert len(closed) == 1  # was left open: the CLI had to open and close the source itself
    compute_trends(tmp_path / "answers.db")
    assert len(closed) == 2
    given = StoreSource(str(tmp_path / "answers.db"))
    compute_trends(given)
    assert len(closed) == 2  # a source passed in belongs to the caller
    given.close()


def test_emerging_reasons_are_added_only_where_there_are_answers_to_look_in(tmp_path, tiny_classifier, monkeypatch):
    from reason_classifier.classifier import ReasonClassifier
    from reason_classifier.trends import add_emerging_reasons

    def no_model(*args, **kwargs):
        raise AssertionError("no model is loaded when there is nothing to look in")

    monkeypatch.setattr(ReasonClassifier, "from_settings", no_model)
    columns = ["cancelled_at", "plan", "mrr", *TAG_COLUMNS]
    without_answers = compute_trends(write_export(tmp_path / "n.csv", generated(60), columns), latest_sample=50)
    assert add_emerging_reasons(without_answers).document.emerging is None
    report = compute_trends(write_export(tmp_path / "e.csv", generated(300)), latest_sample=40)
    add_emerging_reasons(report, tiny_classifier)
    emerging = report.document.emerging
    assert emerging is not None and emerging.period == report.document.periods[-1].period
    assert emerging.sampled == len(report.latest_answers) == 40 < emerging.answers_in_period
    assert emerging.answers_in_period == report.latest_answers_total


def test_latest_rows_are_the_last_periods_rows_of_a_level_and_segment(tmp_path):
    document = compute_trends(write_export(tmp_path / "e.csv", generated(300)), TrendOptions(by=("plan",))).document
    last = document.periods[-1].start
    overall = document.latest_rows()
    assert sorted(r.category for r in overall) == sorted(c for c, _ in REASONS)
    assert all(r.segment == "all" and r.level == "category" and r.period_start == last for r in overall)
    by_plan = document.latest_rows("sub_reason", segment="plan")
    assert by_plan and all(r.segment == "plan" and r.level == "sub_reason" and r.period_start == last for r in by_plan)
    expected = [r for r in document.rows if r.segment == "plan" and r.level == "sub_reason" and r.period_start == last]
    assert by_plan == expected
    empty = compute_trends(
        write_export(tmp_path / "e.csv", generated(30)), TrendOptions(since=date(2030, 1, 1))
    ).document
    assert empty.periods == [] and empty.latest_rows() == []
