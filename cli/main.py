"""`reason-classifier`: tag survey exports, train and evaluate models, from the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from reason_classifier.config import Settings
from reason_classifier.errors import ReasonClassifierError
from reason_classifier.taxonomy import CATEGORIES

from .common import TextColumnOption, answer_column, console, fail, output, progress_bar
from .discover import discover, label
from .retention import retention
from .trends import trends

if TYPE_CHECKING:
    from reason_classifier.tagging import TagSummary

app = typer.Typer(
    help="Turn the free text of churn and cancellation surveys into reasons a business can act on.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.command()
def tag(
    input: Annotated[
        str,
        typer.Argument(
            help="Survey export: .csv, .tsv, .jsonl, .parquet or .xlsx; with --engine ray also a folder, a glob "
            "('exports/*.parquet') or any path Ray Data reads (s3://…)."
        ),
    ],
    output_path: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Where to write the tagged export (default: INPUT with .tagged before the extension); with "
            "--engine ray a folder, one output per input file.",
        ),
    ] = None,
    text_column: TextColumnOption = None,
    format: Annotated[
        str | None,
        typer.Option("--format", help="Input format when the extension does not say: csv, tsv, jsonl, parquet, excel."),
    ] = None,
    output_format: Annotated[
        str | None, typer.Option("--output-format", help="Output format (default: from the output's extension).")
    ] = None,
    encoding: Annotated[
        str, typer.Option(help="Text encoding of CSV/TSV/JSONL input; UTF-8 with or without BOM by default.")
    ] = "utf-8-sig",
    sheet: Annotated[str | None, typer.Option(help="Excel sheet to read (default: the first).")] = None,
    model: Annotated[
        Path | None,
        typer.Option(help="Model folder, or 'fast' (default: the shipped model, or REASON_CLASSIFIER_MODEL)."),
    ] = None,
    bom: Annotated[
        bool | None,
        typer.Option(
            "--bom/--no-bom",
            help=(
                "CSV/TSV output: start with a UTF-8 byte-order mark, which Excel needs to show accents and CJK "
                "(default: when the input has one or is .xlsx)."
            ),
        ),
    ] = None,
    escape_formulas: Annotated[
        bool,
        typer.Option(
            "--escape-formulas",
            help="CSV/TSV output: prefix cells starting with = + - @ with ' so a spreadsheet shows them as text.",
        ),
    ] = False,
    encoder: Annotated[
        str | None,
        typer.Option(
            help="Encoder name or folder to use instead of the model folder's own (the only way to use one outside it)."
        ),
    ] = None,
    json_summary: Annotated[bool, typer.Option("--json", help="Print the summary as JSON instead of a table.")] = False,
    engine: Annotated[
        str,
        typer.Option(help="local: this process; ray: Ray Data, a pool of model actors on a local or joined cluster."),
    ] = "local",
    address: Annotated[
        str | None, typer.Option(help="--engine ray: join the Ray cluster here (default: start Ray on this machine).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="--engine ray: model actors (default: one per CPU, at most one per file).")
    ] = None,
) -> None:
    """Tag every answer of a survey export with a churn reason; every row is kept, in order."""
    from reason_classifier.classifier import ReasonClassifier
    from reason_classifier.survey_files import detect_format
    from reason_classifier.tagging import tag_file

    settings = Settings()
    if engine == "ray":
        return _tag_on_ray(
            settings,
            input,
            output_path,
            text_column,
            format,
            output_format,
            encoding,
            sheet,
            model,
            address,
            workers,
            json_summary,
        )
    if engine != "local":
        raise fail(f"unknown engine {engine!r}; use local or ray")
    source = Path(input)
    try:
        fmt = detect_format(source, format)
        text_column = answer_column(text_column, source, fmt, encoding, sheet)
        target = output_path or source.with_name(f"{source.stem}.tagged{source.suffix}")
        classifier = ReasonClassifier.from_settings(settings, model=model, encoder=encoder)
        with progress_bar(f"tagging {source.name}") as on_progress:
            summary = tag_file(
                source,
                target,
                classifier,
                text_column,
                input_format=fmt,
                output_format=output_format,
                encoding=encoding,
                sheet=sheet,
                chunk_rows=settings.chunk_rows,
                on_progress=on_progress,
                bom=bom,
                escape_formulas=escape_formulas,
            )
    except ReasonClassifierError as error:
        raise fail(str(error)) from None
    if json_summary:
        output.print_json(json.dumps(summary.as_dict()))
        return
    _print_tag_summary(summary, f"{summary.rows} answers tagged → {summary.output}")


def _tag_on_ray(
    settings: Settings,
    input: str,
    output_path: Path | None,
    text_column: str | None,
    format: str | None,
    output_format: str | None,
    encoding: str,
    sheet: str | None,
    model: Path | None,
    address: str | None,
    workers: int | None,
    json_summary: bool,
) -> None:
    from reason_classifier.ray_tagging import RayTagOptions, find_sources, tag_on_ray

    if output_path is None:
        raise fail("--engine ray writes one output per input file: give the output folder with -o")
    try:
        sources = find_sources(input, format)
        if text_column is None and "://" in sources[0]:
            raise fail("--engine ray on remote files needs --text-column")
        text_column = answer_column(text_column, Path(sources[0]), format, encoding, sheet)
        options = RayTagOptions.from_settings(
            settings.choosing_model(model),
            text_column,
            input_format=format,
            output_format=output_format or "parquet",
            encoding=encoding,
            sheet=sheet,
        )
        console.print(f"tagging {len(sources)} file(s) on Ray", highlight=False)
        result = tag_on_ray(sources, output_path, options, workers=workers, address=address)
    except ReasonClassifierError as error:
        raise fail(str(error)) from None
    if json_summary:
        output.print_json(json.dumps(result.as_dict()))
        return
    files, actors = len(result.outputs), result.workers
    title = f"{result.summary.rows} answers in {files} file(s) tagged by {actors} Ray actor(s) → {output_path}"
    _print_tag_summary(result.summary, title)


def _print_tag_summary(summary: TagSummary, title: str) -> None:
    table = Table(title=title)
    table.add_column("category")
    table.add_column("answers", justify="right")
    table.add_column("share", justify="right")
    for category in CATEGORIES:
        table.add_row(category, str(summary.categories[category]), f"{summary.share(category):.1%}")
    output.print(table)
    output.print(
        f"{summary.errors} row(s) could not be classified (see the error column); "
        f"{summary.abstained} abstained (too unsure, tagged other; see the abstained column). "
        f"{summary.rows_per_second:,.0f} rows/s.",
        highlight=False,
    )


@app.command()
def train(
    data: Annotated[
        list[Path], typer.Argument(help="Labelled CSV files or folders (columns text, category, sub_reason, lang).")
    ],
    output_path: Annotated[Path, typer.Option("-o", "--output", help="Model folder to write.")],
    base: Annotated[
        str | None, typer.Option("--base", help="Encoder name or local folder (default: use-multilingual-v3).")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="JSON or YAML file of training options.")] = None,
    taxonomy: Annotated[Path | None, typer.Option(help="Taxonomy file (default: labels/taxonomy.yaml).")] = None,
    heldout: Annotated[
        list[Path] | None,
        typer.Option(help="Held-out labelled data to measure on (default: 20% of DATA, set aside before training)."),
    ] = None,
) -> None:
    """Train a model folder from labelled answers, and measure it on answers it was not trained on."""
    from reason_classifier.training.config import TrainingConfig
    from reason_classifier.training.train import train_from_files

    try:
        training_config = TrainingConfig.load(config, encoder=base)
        with progress_bar("training", lines_without_terminal=True) as on_progress:
            classifier, metrics = train_from_files(
                data, output_path, training_config, taxonomy=taxonomy, heldout=heldout, on_progress=on_progress
            )
    except (ReasonClassifierError, OSError) as error:
        raise fail(str(error)) from None
    output.print(f"model written to {output_path} (abstains below {classifier.abstain_below:.2f})")
    for result in metrics.values():
        output.print(f"held-out {result['data']}: accuracy {result['accuracy']:.3f}, macro-F1 {result['macro_f1']:.3f}")


@app.command()
def evaluate(
    model: Annotated[
        str,
        typer.Argument(help="Model folder, 'default' for the shipped model or 'fast' for it without its transformer."),
    ],
    data: Annotated[list[Path], typer.Argument(help="Labelled CSV files or folders the model was not trained on.")],
    output_dir: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Folder for metrics.json, confusion.png, reliability.png, report.html."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Measure a model on labelled answers: accuracy, macro-F1, per class and language, confusion, calibration."""
    from reason_classifier.classifier import ReasonClassifier
    from reason_classifier.training.corpus import read_labelled
    from reason_classifier.training.evaluate import evaluate as evaluate_model
    from reason_classifier.training.report import write_report

    try:
        classifier = ReasonClassifier.from_settings(model=model)
        labelled = read_labelled(data, classifier.taxonomy)
        result = evaluate_model(classifier, labelled, ", ".join(map(str, data)))
        paths = write_report(result, output_dir, classifier.config.name) if output_dir else {}
    except (ReasonClassifierError, OSError) as error:
        raise fail(str(error)) from None
    if json_output:
        output.print_json(json.dumps(result))
        return
    table = Table(title=f"{classifier.config.name} on {result['data']} ({result['rows']} answers)")
    for column in ("", "rows", "accuracy", "macro-F1"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row("all", str(result["rows"]), f"{result['accuracy']:.3f}", f"{result['macro_f1']:.3f}")
    for language, scores in result["per_language"].items():
        table.add_row(language, str(scores["rows"]), f"{scores['accuracy']:.3f}", f"{scores['macro_f1']:.3f}")
    output.print(table)
    output.print(
        f"calibration error (ECE) {result['calibration']['ece']:.3f}; coverage {result['coverage']:.3f}",
        highlight=False,
    )
    for name, path in paths.items():
        output.print(f"{name}: {path}", highlight=False)


@app.command()
def classify(
    texts: Annotated[list[str], typer.Argument(help="One or more answers to classify.")],
    model: Annotated[Path | None, typer.Option(help="Model folder, or 'fast' (default: the shipped model).")] = None,
) -> None:
    """Classify answers given on the command line and print the predictions as JSON lines."""
    from dataclasses import asdict

    from reason_classifier.classifier import ReasonClassifier

    try:
        classifier = ReasonClassifier.from_settings(model=model)
    except ReasonClassifierError as error:
        raise fail(str(error)) from None
    for prediction in classifier.predict(texts):
        output.print(json.dumps(asdict(prediction), ensure_ascii=False), highlight=False, soft_wrap=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help=(
                "Model calls run at once, in threads of one process (one model in memory; /readyz and /metrics "
                "are the whole service's)."
            ),
        ),
    ] = 1,
    model: Annotated[
        Path | None,
        typer.Option(
            help=(
                "Model folder, or 'fast' (default: REASON_CLASSIFIER_SERVICE_MODEL, REASON_CLASSIFIER_MODEL, "
                "or the shipped model)."
            )
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="YAML file of service settings (see docs/service.md)."),
    ] = None,
) -> None:
    """Run the HTTP classify service (FastAPI under uvicorn); settings come from the environment and --config."""
    import os

    from reason_classifier.service.settings import CONFIG_FILE_VARIABLE, ENV_PREFIX, ServiceSettings

    # Workers are separate processes that build their settings from the environment, so pass the options there.
    if config is not None:
        os.environ[CONFIG_FILE_VARIABLE] = str(config.resolve())
    if model is not None:
        os.environ[f"{ENV_PREFIX}MODEL"] = str(model) if str(model) in ("default", "fast") else str(model.resolve())
    # One process, `workers` model threads: with uvicorn's worker processes, /readyz answered for whichever
    # process got the request (ready while most requests got 503 not_ready) and /metrics was per process.
    if workers > 1:
        os.environ[f"{ENV_PREFIX}PREDICT_THREADS"] = str(workers)
    try:
        settings = ServiceSettings.load()  # refuse bad settings here, before any worker starts
        from reason_classifier.service.offers import OffersConfig

        OffersConfig.load(settings.offers)
    except ReasonClassifierError as error:
        raise fail(str(error)) from None
    from reason_classifier.service.server import run

    run(settings, host, port)


app.command()(discover)
app.command()(label)
app.command()(trends)
app.command()(retention)


if __name__ == "__main__":
    app()
