"""What the sub-commands share: the two consoles, the error exit, the progress bar, the text-column guess."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from reason_classifier.config import LIKELY_TEXT_COLUMNS
from reason_classifier.errors import ReasonClassifierError

console = Console(stderr=True)
output = Console()


def fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def guess_text_column(columns: list[str], path: Path) -> str:
    by_name = {c.strip().lower(): c for c in columns}
    for name in LIKELY_TEXT_COLUMNS:
        if name in by_name:
            console.print(f"using column {by_name[name]!r} as the answer text (set --text-column to choose another)")
            return by_name[name]
    raise ReasonClassifierError(
        f"{path}: which column holds the answers? Pass --text-column; the columns are: {', '.join(map(repr, columns))}"
    )


def progress_bar(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
