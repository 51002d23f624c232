"""Ledger reconciliation: every invariant of DESIGN.md checked over all data, in set-based SQL.

Each check is one query that returns only the offending rows, so the cost is a few scans
of each table whatever its size. The SQL is portable between PostgreSQL and SQLite (but for
reading an event's JSON, `_json_id`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import connection


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    sql: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Violation:
    check: str
    detail: dict

    def __str__(self) -> str:
        fields = " ".join(f"{k}={v}" for k, v in self.detail.items())
        return f"{self.check}: {fields}"


CHECKS: list[Check] = [
    Check(
        "balance_matches_ledger",
        "customer.balance = sum of its successful balance updates",
        """
        SELECT c.id, c.balance, COALESCE(s.total, 0)
        FROM accounts_customer c
        LEFT JOIN (SELECT bu.customer_id,
                          SUM(CASE WHEN bu.effect = 'credit' THEN bu.amount ELSE -bu.amount END)
                          AS total
                   FROM ledger_balanceupdate bu WHERE bu.status = 'Success'
                   GROUP BY bu.customer_id) s ON s.customer_id = c.id
        WHERE c.balance <> COALESCE(s.total, 0)
        """,
        ("customer", "cached_balance", "ledger_balance"),
    ),
    Check(
        "points_match_ledger",
        "customer.points = sum of its point transactions",
        """
        SELECT c.id, c.points, COALESCE(s.total, 0)
        FROM accounts_customer c
        LEFT JOIN (SELECT customer_id, SUM(points) AS total FROM ledger_pointtransaction
                   GROUP BY customer_id) s ON s.customer_id = c.id
        WHERE c.points <> COALESCE(s.total, 0)
        """,
        ("customer", "cached_points", "ledger_points"),
    ),
    Check(
        "nothing_negative",
        "no balance or points below 0",
        "SELECT id, balance, points FROM accounts_customer WHERE balance < 0 OR points < 0",
        ("customer", "balance", "points"),
    ),
    Check(
        "customer_matches_history",
        "a customer's balance and points are those of its latest history row",
        """
        SELECT c.id, c.balance, h.balance, c.points, h.points
        FROM accounts_customer c
        LEFT JOIN (SELECT id, MAX(history_id) AS hid FROM accounts_historicalcustomer
                   GROUP BY id) m ON m.id = c.id
        LEFT JOIN accounts_historicalcustomer h ON h.history_id = m.hid
        WHERE h.history_id IS NULL OR h.balance <> c.balance OR h.points <> c.points
        """,
        ("customer", "balance", "history_balance", "points", "history_points"),
    ),
    Check(
        "stamp_count_in_range",
        "0 <= stamp count <= the card's maximum",
        """
        SELECT s.id, s.count, s.max_stamps, k.max_stamps
        FROM ledger_stamp s JOIN ledger_stampcard k ON k.id = s.card_id
        WHERE s.count < 0 OR s.count > s.max_stamps OR s.max_stamps <> k.max_stamps
        """,
        ("stamp", "count", "max_stamps", "card_max_stamps"),
    ),
    Check(
        "stamp_matches_history",
        "a stamp's count is that of its latest history row",
        """
        SELECT s.id, s.count, h.count
        FROM ledger_stamp s
        LEFT JOIN (SELECT id, MAX(history_id) AS hid FROM ledger_historicalstamp
                   GROUP BY id) m ON m.id = s.id
        LEFT JOIN ledger_historicalstamp h ON h.history_id = m.hid
        WHERE h.history_id IS NULL OR h.count <> s.count
        """,
        ("stamp", "count", "history_count"),
    ),
    Check(
        "points_after_chain",
        "each point transaction's points_after is the running sum of its customer's ledger",
        """
        SELECT id, customer_id, points_after, running FROM (
            SELECT id, customer_id, points_after,
                   SUM(points) OVER (PARTITION BY customer_id ORDER BY id
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running
            FROM ledger_pointtransaction) t
        WHERE points_after <> running
        """,
        ("point_transaction", "customer", "points_after", "running_sum"),
    ),
    Check(
        "balance_after_not_negative",
        "each balance update records a balance after it of 0 or more",
        "SELECT id, balance_after FROM ledger_balanceupdate WHERE balance_after < 0",
        ("balance_update", "balance_after"),
    ),
    Check(
        "one_deduction_per_redemption",
        "a redemption id is deducted at most once per credential",
        """
        SELECT partner_id, redemption_id, COUNT(*) FROM ledger_pointtransaction
        WHERE kind = 'deduct' GROUP BY partner_id, redemption_id HAVING COUNT(*) > 1
        """,
        ("partner", "redemption_id", "deductions"),
    ),
    Check(
        "revert_matches_deduction",
        "a revert gives back exactly one deduction's points, to the same customer, once",
        """
        SELECT r.id, r.reverts_id, r.points, d.points, d.kind
        FROM ledger_pointtransaction r
        LEFT JOIN ledger_pointtransaction d ON d.id = r.reverts_id
        WHERE r.kind = 'revert' AND (d.id IS NULL OR d.kind <> 'deduct'
              OR r.points <> -d.points OR r.customer_id <> d.customer_id)
        UNION ALL
        SELECT MIN(id), reverts_id, COUNT(*), NULL, 'reverted more than once'
        FROM ledger_pointtransaction WHERE reverts_id IS NOT NULL
        GROUP BY reverts_id HAVING COUNT(*) > 1
        """,
        ("revert", "deduction", "revert_points", "deduction_points", "deduction_kind"),
    ),
    Check(
        "cancel_status_consistent",
        "a balance update is Canceled exactly when it has canceled_at",
        """
        SELECT id, status, canceled_at FROM ledger_balanceupdate
        WHERE status NOT IN ('Success', 'Canceled')
           OR (status = 'Canceled') <> (canceled_at IS NOT NULL)
        """,
        ("balance_update", "status", "canceled_at"),
    ),
    Check(
        "merchant_consistent",
        "a ledger row, its customer, card and store belong to one merchant",
        """
        SELECT 'balance_update', bu.id, bu.merchant_id, c.merchant_id
        FROM ledger_balanceupdate bu JOIN accounts_customer c ON c.id = bu.customer_id
        LEFT JOIN accounts_store st ON st.id = bu.store_id
        WHERE bu.merchant_id <> c.merchant_id OR st.merchant_id <> bu.merchant_id
        UNION ALL
        SELECT 'point_transaction', p.id, p.merchant_id, c.merchant_id
        FROM ledger_pointtransaction p JOIN accounts_customer c ON c.id = p.customer_id
        WHERE p.merchant_id <> c.merchant_id
        UNION ALL
        SELECT 'stamp', s.id, s.merchant_id, c.merchant_id
        FROM ledger_stamp s JOIN accounts_customer c ON c.id = s.customer_id
        JOIN ledger_stampcard k ON k.id = s.card_id
        WHERE s.merchant_id <> c.merchant_id OR k.merchant_id <> s.merchant_id
        """,
        ("model", "id", "merchant", "customer_merchant"),
    ),
    Check(
        "ledger_rows_have_history",
        "every ledger row has the history row of its creation",
        """
        SELECT 'balance_update', x.id FROM ledger_balanceupdate x WHERE NOT EXISTS (
            SELECT 1 FROM ledger_historicalbalanceupdate h
            WHERE h.id = x.id AND h.history_type = '+')
        UNION ALL
        SELECT 'point_transaction', x.id FROM ledger_pointtransaction x WHERE NOT EXISTS (
            SELECT 1 FROM ledger_historicalpointtransaction h
            WHERE h.id = x.id AND h.history_type = '+')
        UNION ALL
        SELECT 'stamp', x.id FROM ledger_stamp x WHERE NOT EXISTS (
            SELECT 1 FROM ledger_historicalstamp h WHERE h.id = x.id AND h.history_type = '+')
        """,
        ("model", "id"),
    ),
    Check(
        "ledger_rows_have_events",
        "every ledger row has its one event (and a canceled update its cancel), every event "
        "its row, of its customer",
        """
        WITH ev AS (SELECT id, type, customer_id, :balance_update_id: AS bu,
                           :point_transaction_id: AS pt, :stamp_id: AS st FROM ledger_event)
        SELECT 'balance_update', x.id, 'created', COUNT(ev.id) FROM ledger_balanceupdate x
        LEFT JOIN ev ON ev.bu = x.id
             AND ev.type IN ('balance.credited', 'balance.debited', 'balance.adjusted')
        GROUP BY x.id HAVING COUNT(ev.id) <> 1
        UNION ALL
        SELECT 'balance_update', x.id, 'canceled', COUNT(ev.id) FROM ledger_balanceupdate x
        LEFT JOIN ev ON ev.bu = x.id AND ev.type = 'balance.canceled'
        GROUP BY x.id, x.status
        HAVING COUNT(ev.id) <> CASE WHEN x.status = 'Canceled' THEN 1 ELSE 0 END
        UNION ALL
        SELECT 'point_transaction', x.id, 'created', COUNT(ev.id) FROM ledger_pointtransaction x
        LEFT JOIN ev ON ev.pt = x.id AND ev.type IN
             ('points.credited', 'points.deducted', 'points.adjusted', 'points.reverted')
        GROUP BY x.id HAVING COUNT(ev.id) <> 1
        UNION ALL
        SELECT 'event', ev.id, ev.type, 0 FROM ev
        WHERE (ev.type LIKE 'balance.%' AND NOT EXISTS (SELECT 1 FROM ledger_balanceupdate x
                   WHERE x.id = ev.bu AND x.customer_id = ev.customer_id))
           OR (ev.type LIKE 'points.%' AND NOT EXISTS (SELECT 1 FROM ledger_pointtransaction x
                   WHERE x.id = ev.pt AND x.customer_id = ev.customer_id))
           OR (ev.type LIKE 'stamp.%' AND NOT EXISTS (SELECT 1 FROM ledger_stamp x
                   WHERE x.id = ev.st AND x.customer_id = ev.customer_id))
        """,
        ("model", "id", "event", "events"),
    ),
    Check(
        "customer_events_gap_free",
        "a customer's events are numbered 1..n without gap, n = its event count",
        """
        SELECT c.id, c.event_sequence, COUNT(e.id), COALESCE(MAX(e.customer_sequence), 0)
        FROM accounts_customer c LEFT JOIN ledger_event e ON e.customer_id = c.id
        GROUP BY c.id, c.event_sequence
        HAVING c.event_sequence <> COUNT(e.id)
            OR c.event_sequence <> COALESCE(MAX(e.customer_sequence), 0)
        """,
        ("customer", "event_sequence", "events", "last_sequence"),
    ),
    Check(
        "history_attributed",
        "every history row names its channel",
        " UNION ALL ".join(
            f"SELECT '{table}', COUNT(*) FROM {table} WHERE channel = '' HAVING COUNT(*) > 0"  # noqa: S608 - fixed table names
            for table in (
                "accounts_historicalmerchant",
                "accounts_historicalstore",
                "accounts_historicalcustomer",
                "ledger_historicalstampcard",
                "ledger_historicalstamp",
                "ledger_historicalbalanceupdate",
                "ledger_historicalpointtransaction",
                "partners_historicalpartner",
            )
        ),
        ("history_table", "unattributed_rows"),
    ),
]

LIMIT_PER_CHECK = 1000


def _plain(value):
    # PostgreSQL's SUM over BIGINT is NUMERIC; report whole numbers as integers.
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


def _json_id(key: str) -> str:
    """The integer at data.<key>.id of an event, in this database's JSON dialect."""
    if connection.vendor == "postgresql":
        return f"CAST(data -> '{key}' ->> 'id' AS BIGINT)"
    return f"CAST(json_extract(data, '$.{key}.id') AS INTEGER)"


def _portable(sql: str) -> str:
    for key in ("balance_update", "point_transaction", "stamp"):
        sql = sql.replace(f":{key}_id:", _json_id(key))
    return sql


def run() -> tuple[list[Violation], dict[str, int]]:
    """Run every check; returns the violations (at most LIMIT_PER_CHECK per check) and counts."""
    violations: list[Violation] = []
    counts: dict[str, int] = {}
    with connection.cursor() as cursor:
        for check in CHECKS:
            cursor.execute(_portable(check.sql))
            rows = cursor.fetchmany(LIMIT_PER_CHECK + 1)
            counts[check.name] = len(rows)
            violations.extend(
                Violation(
                    check.name,
                    {k: _plain(v) for k, v in zip(check.columns, row, strict=True)},
                )
                for row in rows[:LIMIT_PER_CHECK]
            )
        for table in (
            "accounts_customer",
            "ledger_stamp",
            "ledger_balanceupdate",
            "ledger_pointtransaction",
            "ledger_event",
        ):
            cursor.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 - fixed names
            counts[f"rows:{table}"] = cursor.fetchone()[0]
    return violations, counts
