"""What the sub-commands share: the two consoles, the error exit, the progress bar, the answer column."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from reason_classifier.columns import guess_export_text_column
from reason_classifier.errors import ReasonClassifierError
from reason_classifier.progress import ProgressCallback, ProgressEvent
from reason_classifier.progress_lines import ProgressLines
from reason_classifier.survey_files import SurveyFormat

TextColumnOption = Annotated[
    str | None,
    typer.Option(
        "--text-column",
        "-c",
        help=(
            "Column holding the free-text answer (default: one named answer, response, reason, feedback, "
            "comment or text)."
        ),
    ),
]
"""The answer column of an export, for the commands that read one answer per row."""


console = Console(stderr=True)
output = Console()


def day(value: str | None, option: str) -> date | None:
    """A --since/--until option's YYYY-MM-DD as a date; anything else is the option's error."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ReasonClassifierError(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None


def fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def answer_column(
    text_column: str | None,
    path: Path,
    input_format: str | SurveyFormat | None,
    encoding: str = "utf-8-sig",
    sheet: str | None = None,
) -> str:
    """`--text-column` if given, else the library's guess from the export's header, said aloud so a wrong guess is
    seen before the run."""
    if text_column is not None:
        return text_column
    guessed = guess_export_text_column(path, input_format, encoding, sheet)
    console.print(f"using column {guessed!r} as the answer text (set --text-column to choose another)")
    return guessed


@contextmanager
def progress_bar(description: str, *, lines_without_terminal: bool = False) -> Iterator[ProgressCallback]:
    """A transient bar on stderr fed by the library's progress events, restarted at each new stage so that the time
    left is the stage's own. Without a terminal: nothing, or with `lines_without_terminal` plain lines (a few a
    minute), so that a log shows how far a job of several minutes is."""
    if lines_without_terminal and not console.is_terminal:
        yield ProgressLines(lambda line: console.print(line, highlight=False, soft_wrap=True, markup=False))
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task(description, total=None)
        stage = [description]

        def show(event: ProgressEvent) -> None:
            if event.stage != stage[0]:
                stage[0] = event.stage
                progress.reset(task, total=event.total, completed=event.done, description=event.describe())
            else:
                progress.update(task, description=event.describe(), completed=event.done, total=event.total)

        yield show
