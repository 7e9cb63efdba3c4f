"""The answer column of an export, guessed by name when nobody names it: one rule for tagging, discovery, trends."""

from __future__ import annotations

import pytest

from reason_classifier.columns import LIKELY_TEXT_COLUMNS, guess_column, guess_export_text_column, guess_text_column
from reason_classifier.errors import InputError


def test_the_likeliest_name_wins_whatever_the_column_order_and_the_export_spelling_is_kept():
    assert guess_column(["Comment", " Answer ", "id"], LIKELY_TEXT_COLUMNS) == " Answer "
    assert guess_column(["id", "FEEDBACK"], LIKELY_TEXT_COLUMNS) == "FEEDBACK"
    assert guess_column(["id", "plan"], LIKELY_TEXT_COLUMNS) is None
    assert guess_column(["MRR", "plan"], ("mrr",)) == "MRR"


def test_no_likely_name_is_an_input_error_that_lists_the_columns():
    with pytest.raises(InputError, match=r"export\.csv: which column holds the answers\?.*'id', 'plan'"):
        guess_text_column(["id", "plan"], "export.csv")


def test_an_export_is_guessed_from_its_header_in_any_format(tmp_path):
    csv = tmp_path / "export.csv"
    csv.write_text("customer_id;Reason;plan\n1;too expensive;team\n", encoding="utf-8")
    assert guess_export_text_column(csv) == "Reason"
    jsonl = tmp_path / "export.data"
    jsonl.write_text('{"id": 1, "response": "slow support"}\n', encoding="utf-8")
    assert guess_export_text_column(jsonl, "jsonl") == "response"
    with pytest.raises(InputError, match="no such file"):
        guess_export_text_column(tmp_path / "missing.csv")
