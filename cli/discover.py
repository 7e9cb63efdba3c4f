"""`reason-classifier discover` and `reason-classifier label`: from unlabelled answers to reviewed training data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from reason_classifier.errors import ReasonClassifierError

from .common import TextColumnOption, answer_column, fail, output, progress_bar


def discover(
    input: Annotated[Path, typer.Argument(help="Survey export: .csv, .tsv, .jsonl, .parquet or .xlsx.")],
    output_dir: Annotated[
        Path, typer.Option("-o", "--output", help="Folder for clusters.yaml, assignments.csv and report.html.")
    ],
    text_column: TextColumnOption = None,
    encoder: Annotated[
        str | None,
        typer.Option(
            help=(
                "default (the shipped model's fine-tuned multilingual encoder), use-multilingual-v3, "
                "all-MiniLM-L6-v2, or a folder."
            )
        ),
    ] = None,
    min_cluster_size: Annotated[
        int | None,
        typer.Option(min=2, help="Smallest group called a cluster (default: automatic, about sqrt(answers)/2)."),
    ] = None,
    max_sample: Annotated[
        int,
        typer.Option(min=10, help="Cluster at most this many answers; the rest are assigned to the clusters found."),
    ] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the sample and of UMAP: same input and seed, same clusters.")] = 0,
    new_below: Annotated[
        float | None,
        typer.Option(help="Propose `new` for clusters less similar than this (cosine) to every sub-reason."),
    ] = None,
    taxonomy: Annotated[
        Path | None, typer.Option(help="Taxonomy for the proposals (default: labels/taxonomy.yaml).")
    ] = None,
    format: Annotated[
        str | None,
        typer.Option("--format", help="Input format when the extension does not say: csv, tsv, jsonl, parquet, excel."),
    ] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of CSV/TSV/JSONL input.")] = "utf-8-sig",
    sheet: Annotated[str | None, typer.Option(help="Excel sheet to read (default: the first).")] = None,
    json_summary: Annotated[bool, typer.Option("--json", help="Print the summary as JSON instead of a table.")] = False,
) -> None:
    """Cluster the answers of an export into candidate reasons and write a review file, assignments and a report."""
    from reason_classifier.discovery import ReasonDiscoverer
    from reason_classifier.discovery import discover as run_discovery
    from reason_classifier.discovery.encoding import DEFAULT_ENCODER
    from reason_classifier.survey_files import detect_format

    try:
        discoverer = ReasonDiscoverer(
            encoder or DEFAULT_ENCODER,
            taxonomy=taxonomy,
            min_cluster_size=min_cluster_size,
            max_sample=max_sample,
            new_below=new_below,
            seed=seed,
        )
        text_column = answer_column(text_column, input, detect_format(input, format), encoding, sheet)
        with progress_bar("reading") as on_progress:
            result = run_discovery(
                input,
                text_column,
                output_dir,
                discoverer,
                input_format=format,
                encoding=encoding,
                sheet=sheet,
                on_progress=on_progress,
            )
    except (ReasonClassifierError, ValueError) as error:
        raise fail(str(error)) from None
    if json_summary:
        output.print_json(json.dumps(result.as_dict(), ensure_ascii=False))
        return
    review, summary = result.review, result.review.summary
    table = Table(title=f"{len(review.clusters)} clusters in {review.answers:,} answers → {output_dir}")
    for column in ("id", "name", "answers", "share", "proposed", "similarity"):
        table.add_column(column, justify="right" if column in ("id", "answers", "share", "similarity") else "left")
    for cluster in review.clusters:
        proposed = cluster.proposed
        table.add_row(
            str(cluster.id),
            escape(cluster.name),
            f"{cluster.size:,}",
            f"{cluster.share:.1%}",
            f"{proposed.category}/{proposed.sub_reason}" if proposed else "",
            f"{proposed.similarity:.2f}" if proposed else "",
        )
    output.print(table)
    assigned = summary["noise_assigned"] + summary["out_of_sample_assigned"]
    output.print(
        f"{summary['sample_size']:,} answers clustered as a sample; {assigned:,} assigned to their nearest cluster; "
        f"{review.unassigned.size:,} unassigned ({review.unassigned.share:.1%}); {review.invalid_rows:,} row(s) "
        f"not clustered (see the error column). {sum(result.timings.values()):.1f} s.",
        highlight=False,
    )
    for name, path in result.files.items():
        output.print(f"{name}: {path}", highlight=False)
    output.print(
        f"next: edit {result.files['review']}, then: reason-classifier label {output_dir} -o labelled.csv",
        highlight=False,
    )


def label(
    folder: Annotated[Path, typer.Argument(help="A discovery folder whose clusters.yaml has been reviewed.")],
    output_path: Annotated[
        Path,
        typer.Option(
            "-o", "--output", help="Labelled answers to write (CSV: text, category, sub_reason, lang, source, ...)."
        ),
    ],
    taxonomy: Annotated[
        Path | None, typer.Option(help="Taxonomy to check the review against (default: the one discovery used).")
    ] = None,
    json_summary: Annotated[bool, typer.Option("--json", help="Print the summary as JSON instead of a table.")] = False,
) -> None:
    """Apply a reviewed clusters.yaml: every answer of a mapped cluster gets its category and sub-reason."""
    from reason_classifier.discovery import label as apply_review

    try:
        summary = apply_review(folder, output_path, taxonomy)
    except (ReasonClassifierError, ValueError, OSError) as error:
        raise fail(str(error)) from None
    if json_summary:
        output.print_json(json.dumps(summary.as_dict(), ensure_ascii=False))
        return
    table = Table(title=f"{summary.labelled:,} of {summary.rows:,} answers labelled → {summary.output}")
    for column in ("cluster", "merged", "name", "category", "sub_reason", "answers"):
        table.add_column(column, justify="right" if column in ("cluster", "answers") else "left")
    for group in summary.groups:
        table.add_row(
            str(group["cluster"]),
            ", ".join(map(str, group["merged"])),
            escape(group["name"]),
            group["category"],
            escape(group["sub_reason"]),
            f"{group['answers']:,}",
        )
    output.print(table)
    output.print(
        f"left out: {summary.dropped:,} in dropped clusters, {summary.unassigned:,} unassigned, "
        f"{summary.invalid:,} invalid rows.",
        highlight=False,
    )
    if summary.new_sub_reasons:
        output.print(
            "\nNew sub-reasons proposed in the review (their answers have the category and an empty sub_reason;\n"
            "add them to labels/taxonomy.yaml under the category's sub_reasons, then run label again):",
            highlight=False,
        )
        assert summary.taxonomy is not None  # label() always sets it
        for new in summary.new_sub_reasons:
            output.print(
                f"\n# {new.category}: {new.answers:,} answers from cluster(s) {', '.join(map(str, new.clusters))}",
                highlight=False,
            )
            output.print(escape(new.taxonomy_snippet(summary.taxonomy)), highlight=False, soft_wrap=True)
