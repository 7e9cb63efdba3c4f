"""discover → review → label on small real data (held-out answers in seven languages), with the USE encoder."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from reason_classifier.discovery import ReasonDiscoverer, ReviewError, discover, label
from reason_classifier.training.corpus import HELDOUT_PATH, TAXONOMY_PATH, read_labelled

SUB_REASONS = ("too_expensive", "slow_response", "switched_competitor", "payment_failed")
BAD_ROWS = {5: "", 17: "   ", 40: "x" * 6000}


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> tuple[Path, list[dict]]:
    """A survey export of held-out answers of four sub-reasons in seven languages, with three bad rows."""
    from reason_classifier.taxonomy import Taxonomy

    data = read_labelled(HELDOUT_PATH, Taxonomy.load(TAXONOMY_PATH))
    rows = [
        {
            "customer_id": f"c{i:04d}",
            "mrr": f"{10 + i % 90}.00",
            "answer": e.text,
            "truth": e.sub_reason,
            "lang": e.language,
        }
        for i, e in enumerate(e for e in data.examples if e.sub_reason in SUB_REASONS)
    ]
    for position, text in BAD_ROWS.items():
        rows[position]["answer"] = text
    path = tmp_path_factory.mktemp("export") / "exit_survey.csv"
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path, rows


@pytest.fixture(scope="module")
def discovered(export, tmp_path_factory):
    path, _ = export
    folder = tmp_path_factory.mktemp("discovered")
    result = discover(path, "answer", folder, ReasonDiscoverer(seed=0), map_points=400)
    return folder, result


@pytest.fixture
def folder(discovered, tmp_path) -> Path:
    """A fresh copy of the discovery folder for a test to edit."""
    copy = tmp_path / "review"
    shutil.copytree(discovered[0], copy)
    return copy


def read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def edit(folder: Path, change) -> None:
    path = folder / "clusters.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def majority_truth(folder: Path) -> dict[int, str]:
    votes: dict[int, Counter] = {}
    for row in read_csv(folder / "assignments.csv"):
        if row["cluster_status"] in ("clustered", "assigned"):
            votes.setdefault(int(row["cluster"]), Counter())[row["truth"]] += 1
    return {cluster: counter.most_common(1)[0][0] for cluster, counter in votes.items()}


def test_discover_writes_every_row_in_order_with_clusters_and_flags(export, discovered):
    path, rows = export
    folder, result = discovered
    assignments = read_csv(folder / "assignments.csv")
    assert [r["customer_id"] for r in assignments] == [r["customer_id"] for r in rows]
    assert [r["answer"] for r in assignments] == [r["answer"] for r in rows]
    assert {r["cluster_status"] for r in assignments} <= {"clustered", "assigned", "unassigned", "invalid"}
    for position in BAD_ROWS:
        assert assignments[position]["cluster_status"] == "invalid" and assignments[position]["error"]
        assert assignments[position]["cluster"] == ""
    review = result.review
    assert review.rows == len(rows) and review.invalid_rows == len(BAD_ROWS)
    assert 3 <= len(review.clusters) <= 20
    sizes = Counter(int(r["cluster"]) for r in assignments if r["cluster"] not in ("", "-1"))
    for cluster in review.clusters:
        assert cluster.size == sizes[cluster.id]
        assert 1 <= len(cluster.examples) <= 8 and cluster.keywords and cluster.languages
        assert cluster.proposed is not None and cluster.category == cluster.proposed.category
    assert review.unassigned.size == sum(r["cluster"] == "-1" for r in assignments)
    summary = review.summary
    assert summary["clustered"] + summary["noise_assigned"] + summary["unassigned"] == review.answers
    assert (folder / "clusters.yaml").read_text(encoding="utf-8").startswith("# Review file")


def test_clusters_group_by_meaning_across_languages(discovered):
    folder, result = discovered
    truth = majority_truth(folder)
    assignments = [r for r in read_csv(folder / "assignments.csv") if r["cluster_status"] in ("clustered", "assigned")]
    purity = sum(r["truth"] == truth[int(r["cluster"])] for r in assignments) / len(assignments)
    assert purity > 0.75
    multilingual = [c for c in result.review.clusters if len([lang for lang in c.languages if lang != "unknown"]) >= 3]
    assert len(multilingual) >= len(result.review.clusters) // 2
    proposals = {c.proposed.nearest_sub_reason for c in result.review.clusters}
    assert len(proposals & set(SUB_REASONS)) >= 3


def test_round_trip_reviewed_labels(folder, export):
    truth = majority_truth(folder)
    from reason_classifier.taxonomy import Taxonomy

    taxonomy = Taxonomy.load(TAXONOMY_PATH)

    def map_to_truth(data):
        for entry in data["clusters"]:
            entry["sub_reason"] = truth[entry["id"]]
            entry["category"] = taxonomy.category_of(truth[entry["id"]])

    edit(folder, map_to_truth)
    summary = label(folder, folder / "labelled.csv")
    labelled = read_csv(folder / "labelled.csv")
    assignments = {r["customer_id"]: r for r in read_csv(folder / "assignments.csv")}
    mapped = [r for r in assignments.values() if r["cluster_status"] in ("clustered", "assigned")]
    assert [r["customer_id"] for r in labelled] == [r["customer_id"] for r in mapped]  # row order kept
    for row in labelled:
        assert row["sub_reason"] == truth[int(row["cluster"])]
        assert row["text"] == assignments[row["customer_id"]]["answer"].strip()
        assert row["mrr"] == assignments[row["customer_id"]]["mrr"]  # original columns carried
    assert list(labelled[0])[:5] == ["text", "category", "sub_reason", "lang", "source"]
    assert summary.labelled == len(labelled) and summary.unassigned == sum(
        r["cluster"] == "-1" for r in assignments.values()
    )
    # the output is training data as training.corpus reads it
    assert len(read_labelled(folder / "labelled.csv", taxonomy)) == len(labelled)


def test_merge_drop_and_new(folder):
    def review(data):
        clusters = data["clusters"]
        clusters[1]["merge_into"] = 0
        clusters[1]["category"] = clusters[1]["sub_reason"] = None
        clusters[2]["category"] = "drop"
        clusters[0]["category"], clusters[0]["sub_reason"], clusters[0]["name"] = (
            "pricing",
            "too_expensive",
            "Too expensive",
        )
        clusters[3]["category"], clusters[3]["sub_reason"], clusters[3]["name"] = "product", "new", "Offline mode!"

    edit(folder, review)
    summary = label(folder, folder / "labelled.csv")
    labelled = read_csv(folder / "labelled.csv")
    by_cluster = Counter(r["cluster"] for r in labelled)
    assert "2" not in by_cluster and summary.dropped > 0
    assert all(r["sub_reason"] == "too_expensive" for r in labelled if r["cluster"] in ("0", "1"))
    assert by_cluster["1"] > 0 and summary.groups[0]["merged"] == [1] or any(g["merged"] == [1] for g in summary.groups)
    new_rows = [r for r in labelled if r["cluster"] == "3"]
    assert new_rows and all(
        r["category"] == "product" and r["sub_reason"] == "" and r["proposed_sub_reason"] == "offline_mode"
        for r in new_rows
    )
    [new] = [s for s in summary.new_sub_reasons if s.id == "offline_mode"]
    assert new.id == "offline_mode" and new.category == "product" and new.answers == len(new_rows)
    assert "offline_mode:" in new.taxonomy_snippet(summary.taxonomy)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["clusters"][0].update(category="prcing"), "cluster 0: category: unknown category 'prcing'"),
        (
            lambda d: d["clusters"][0].update(category="pricing", sub_reason="bugs_performance"),
            "cluster 0: sub_reason: 'bugs_performance' is not a sub-reason of 'pricing'; it belongs to category "
            "'product'",
        ),
        (lambda d: d["clusters"].append(dict(d["clusters"][1])), "cluster 1: id: cluster 1 is listed twice"),
        (
            lambda d: (
                d["clusters"][1].update(merge_into=0, category="support", sub_reason="slow_response")
                if d["clusters"][0]["sub_reason"] != "slow_response"
                else d["clusters"][1].update(merge_into=0, category="pricing", sub_reason="too_expensive")
            ),
            "cluster 1: merge_into: cluster 1 is mapped twice",
        ),
        (lambda d: d["clusters"][0].update(id=999), "cluster 999: id: no cluster 999 in assignments.csv"),
        (lambda d: d["clusters"][0].update(merge_into=77), "cluster 0: merge_into: no cluster 77"),
        (
            lambda d: (
                d["clusters"][0].update(merge_into=1, category=None, sub_reason=None),
                d["clusters"][1].update(merge_into=0, category=None, sub_reason=None),
            ),
            "merges loop",
        ),
        (lambda d: d["clusters"].pop(), "are in assignments.csv but not in the review file"),
        (
            lambda d: d["clusters"][2].update(merge_into="three"),
            "cluster 2: merge_into: Input should be a valid integer",
        ),
        (lambda d: d["clusters"][0].update(category=None, sub_reason=None), "cluster 0: category: missing"),
    ],
    ids=[
        "unknown-category",
        "sub-reason-of-another-category",
        "listed-twice",
        "mapped-twice",
        "unknown-id",
        "unknown-merge-target",
        "merge-loop",
        "missing-cluster",
        "wrong-type",
        "missing-category",
    ],
)
def test_review_mistakes_name_the_cluster_and_field(folder, change, message):
    edit(folder, change)
    with pytest.raises(ReviewError) as error:
        label(folder, folder / "labelled.csv")
    assert message in str(error.value)
    assert "line " in str(error.value) or "not in the review file" in message
    assert not (folder / "labelled.csv").exists()


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.script_sources: list[str] = []
        self.inline_script_chars = 0
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "script":
            self._in_script = True
            if attrs.get("src"):
                self.script_sources.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.inline_script_chars += len(data)


def test_report_is_one_self_contained_page(discovered):
    folder, result = discovered
    page = (folder / "report.html").read_text(encoding="utf-8")
    parser = _Collector()
    parser.feed(page)
    assert "answer-map" in parser.ids and "sizes" in parser.ids
    assert {f"cluster-{c.id}" for c in result.review.clusters} <= parser.ids
    assert parser.script_sources == []  # plotly is inlined, nothing is fetched
    assert parser.inline_script_chars > 1_000_000
    assert "cdn.plot.ly" not in page.split("<script")[0]


def test_cli_discover_and_label(export, tmp_path):
    from typer.testing import CliRunner

    from reason_classifier.cli.main import app

    path, _ = export
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "discover",
            str(path),
            "-c",
            "answer",
            "-o",
            str(tmp_path / "d"),
            "--json",
            "--min-cluster-size",
            "12",
            "--seed",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["summary"]["min_cluster_size"] == 12 and summary["clusters"]
    result = runner.invoke(app, ["label", str(tmp_path / "d"), "-o", str(tmp_path / "labelled.csv")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "labelled.csv").is_file()
    missing = runner.invoke(app, ["discover", str(path), "-c", "nope", "-o", str(tmp_path / "e")])
    assert missing.exit_code == 2 and "no column 'nope'" in missing.output


@pytest.mark.browser
def test_report_renders_in_chromium(discovered, tmp_path):
    from tests.browser import render

    folder, result = discovered
    page = render(
        folder / "report.html",
        {"map": "#answer-map .main-svg", "points": "#answer-map .point", "clusters": "div.cluster"},
        screenshot=tmp_path / "report.png",
    )
    assert page.counts["map"] >= 1 and page.counts["points"] > 100
    assert page.counts["clusters"] == len(result.review.clusters)
    assert page.console_errors == [] and page.page_errors == [] and page.network_requests == []


def test_jsonl_export_with_bad_lines_and_an_export_with_no_answers(tmp_path):
    source = read_csv(Path(__file__).resolve().parent.parent / "examples" / "exit_survey.csv")
    lines = [json.dumps({"id": i, "answer": r["answer"]}, ensure_ascii=False) for i, r in enumerate(source)]
    lines[3] = "{not json"
    lines[4] = json.dumps({"id": 4})  # no answer key
    lines[5] = json.dumps({"id": 5, "answer": 42})
    export = tmp_path / "answers.jsonl"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = discover(export, "answer", tmp_path / "out", ReasonDiscoverer(), map_points=100)
    rows = read_csv(tmp_path / "out" / "assignments.csv")
    assert len(rows) == len(source) and [r["id"] for r in rows[6:]] == [str(i) for i in range(6, len(source))]
    assert [rows[i]["cluster_status"] for i in (3, 4, 5)] == ["invalid"] * 3
    assert (
        "not valid JSON" in rows[3]["error"]
        and "no answer field" in rows[4]["error"]
        and "not text" in rows[5]["error"]
    )
    assert result.review.invalid_rows >= 3

    empty = tmp_path / "empty.csv"
    empty.write_text("answer,plan\n,pro\n   ,free\n", encoding="utf-8")
    nothing = discover(empty, "answer", tmp_path / "none", ReasonDiscoverer())
    assert nothing.review.clusters == [] and nothing.review.invalid_rows == 2
    assert [r["cluster_status"] for r in read_csv(tmp_path / "none" / "assignments.csv")] == ["invalid", "invalid"]
    assert (tmp_path / "none" / "report.html").is_file()
