"""The one neutraliser of CSV cells against formula injection."""

import pytest

from loyalty.spreadsheet import safe_cell

# What spreadsheets start a formula with, and the forms they fold to those (NFKC): fullwidth
# and small.
STARTERS = "=+-@\t\r" + "\uff1d\uff0b\uff0d\uff20" + "\ufe66\ufe62\ufe63\ufe6b"


@pytest.mark.parametrize("lead", list(STARTERS))
def test_a_cell_a_spreadsheet_would_run_is_quoted(lead):
    assert safe_cell(lead + "SUM(A1:A9)") == "'" + lead + "SUM(A1:A9)"


@pytest.mark.parametrize(
    "text", ["", "Wrong card", "1-2", "café", "'quoted", " =not at the start", "\u2212minus sign"]
)
def test_other_text_is_left_as_it_is(text):
    assert safe_cell(text) == text
