"""The docs stay true to the repository: every relative link resolves, the benchmarks page equals the results."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def load_report() -> ModuleType:
    """bench/ is a folder of scripts, not a package: load the report script from its file."""
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "bench" / "report.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = load_report()


def links(page: Path) -> list[str]:
    """The targets of the page's Markdown links, outside code (a snippet's `[p] = ...(` is not a link)."""
    text = CODE_SPAN.sub("", FENCE.sub("", page.read_text(encoding="utf-8")))
    return LINK.findall(text)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings, with -1, -2, ... for repeated ones."""
    seen: dict[str, int] = {}
    found = set()
    for line in FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if not heading:
            continue
        anchor = report.anchor(heading.group(1).strip())
        found.add(f"{anchor}-{seen[anchor]}" if anchor in seen else anchor)
        seen[anchor] = seen.get(anchor, 0) + 1
    return found


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not checked offline
            continue
        path_part, _, fragment = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.is_relative_to(root):
            problems.append(f"{target}: leaves the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            problems.append(f"{target}: no heading #{fragment} in {resolved.relative_to(root)}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_the_link_check_finds_a_missing_file_a_missing_heading_and_a_link_out_of_the_repository(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\n## Set-up, and `use`\n", encoding="utf-8")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/a.md) [ok](docs/a.md#set-up-and-use) [ok](#top-heading) [web](https://example.com)\n"
        "# Top heading\n```\n[p](not/a/link.md)\n```\n"
        "[gone](docs/b.md) [no heading](docs/a.md#nowhere) [out](../outside.md)\n",
        encoding="utf-8",
    )
    assert broken_links(page, root=tmp_path) == [
        "docs/b.md: no such file",
        "docs/a.md#nowhere: no heading #nowhere in docs/a.md",
        "../outside.md: leaves the repository",
    ]


def test_the_benchmarks_page_is_what_the_results_give():
    committed = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert committed == report.render(), "docs/benchmarks.md is out of date: run python bench/report.py"


def test_the_benchmarks_page_follows_a_changed_result_and_lists_every_file(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    fast, default = {"rows_per_second": 839.0, "peak_rss_mib": 476.2, "ok": True}, {"rows_per_second": 147.0}
    run = {"date": "2026-01-01", "results": {"fast": fast, "default": default}}
    (results / "tag_throughput.json").write_text(json.dumps(run), encoding="utf-8")
    (results / "tag_throughput.old.json").write_text(json.dumps(run), encoding="utf-8")
    (results / "brand_new.json").write_text(json.dumps({"results": [{"case": "x", "lost": 0}]}), encoding="utf-8")
    page = report.render(results)
    assert page == report.render(results)  # deterministic
    assert "| rows_per_second | 839 | 147 |\n| peak_rss_mib | 476.2 | — |\n| ok | yes | — |" in page
    assert "| x | 0 |" in page
    assert page.index("## brand_new") < page.index("## tag_throughput\n") < page.index("## tag_throughput.old")
    fast["rows_per_second"] = 901.5
    (results / "tag_throughput.json").write_text(json.dumps(run), encoding="utf-8")
    assert "| rows_per_second | 901.5 | 147 |" in report.render(results)
