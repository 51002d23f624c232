"""Exported text made safe for spreadsheets: the one rule every CSV cell goes through."""

import unicodedata

# What a spreadsheet starts a formula with (= + - @), and tab and carriage return, which
# some strip before they look (OWASP's list for CSV injection).
_STARTERS = frozenset("=+-@\t\r")


def safe_cell(text: str) -> str:
    """`text` with an apostrophe in front when a spreadsheet could run it as a formula: it
    starts with one of `_STARTERS` or with a character that folds to one under NFKC (the
    fullwidth forms U+FF1D, U+FF0B, U+FF0D, U+FF20 and the small ones U+FE66, U+FE62, U+FE63,
    U+FE6B, which spreadsheets folding East Asian input read as = + - @). Anything else is
    returned as it is."""
    first = text[:1]
    if first in _STARTERS or (
        first > "\x7f" and unicodedata.normalize("NFKC", first)[:1] in _STARTERS
    ):
        return "'" + text
    return text
