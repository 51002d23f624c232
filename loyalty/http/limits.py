"""The limits every surface enforces, defined once (the database constraints use them too)."""

# Amounts, points and adjustments: 1 to 10^12 in absolute value (CHECK constraints hold it).
MAX_AMOUNT = 10**12

# A correction's reason: 3 to 500 characters once stripped.
REASON_MIN, REASON_MAX = 3, 500

# Request bodies: at most 64 KiB (Django's DATA_UPLOAD_MAX_MEMORY_SIZE is set from it), nested
# at most 64 levels: any recursive walk of a deeper body (canonicalising it to check a
# signature, say) would exhaust Python's stack well inside 64 KiB, at about 450 levels.
MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 64

# Correction batch uploads (CSV or JSON rows) only: up to 20 MiB (README: Bulk corrections).
MAX_UPLOAD_BYTES = 20 * 1024 * 1024

# The largest integer a JSON number carries exactly in JavaScript (and in any double): a float
# beyond it is no longer one integer but a range of them.
MAX_SAFE_INTEGER = 2**53
