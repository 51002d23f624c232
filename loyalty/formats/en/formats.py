"""Dates and times as the back office shows them (FORMAT_MODULE_PATH): ISO-like and 24-hour,
the way support and auditors compare them with logs and partner reports, and narrow enough
to wrap between date and time in a list column ("2026-12-06 21:17:34", not "Dec. 6, 2026,
9:17 p.m.")."""

DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i:s"
TIME_FORMAT = "H:i:s"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
