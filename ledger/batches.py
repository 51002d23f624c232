"""Bulk corrections from a file (README: Bulk corrections): parse, preview, apply once.

`create_batch` parses a CSV upload or JSON rows (a file that cannot be parsed is refused with
its line and creates nothing), resolves every row's target within the batch's merchant,
validates it, and previews it with the real services in rolled-back transactions: each
row's value before and after, cumulatively when a target appears twice. `apply_batch` submits the
batch to approvals as one correction of kind `batch` (its size: the sum of its ready rows'
sizes); once it is `applying` (directly, or when its approval is approved) the worker's
`run_due` applies its ready rows in line order, a chunk at a time, each row in its own
transaction through the same service, the row marked in that same transaction.

At most once, also across killed workers: a row moves from `ready` to `applied` only in the
transaction of its ledger move, so a transaction that dies takes its row's mark with it, and
the next worker applies that row and no other twice. An adjustment's row is settled by its
move's own statement (ledger.statements.Settle: the row locked if still ready, the move, the
mark; one round trip, its own transaction in autocommit); the other kinds' services take
several statements, and their row is marked by a conditional UPDATE after the move in the
row's transaction (a row no longer ready rolls the move back).

One worker works a batch at a time (a session advisory lock, freed by PostgreSQL when a killed
worker's connection drops); its lanes (BATCH_THREADS connections) split each chunk by
customer, so each subject's rows apply in line order as they were previewed.

Constant memory for 100,000 rows: rows stream from the parser into the database a chunk at a
time (targets resolved with one query per chunk and kind), and the preview reads them back a
chunk at a time, subject by subject (rows that move different values cannot affect each
other), rolling each chunk back before writing its results, so it holds no row locks for
longer than a chunk.

Longer than 400 lines on purpose: parsing, preview, apply, the worker step and the report
share the row shapes and the target loading, and read best in one place (the sections below
follow a row's life); the admin and the staff API import only its public names.
"""

from __future__ import annotations

import codecs
import contextvars
import csv
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from accounts.models import Customer
from ledger import approvals, corrections, events, statements
from ledger.errors import ClaimTaken
from ledger.models import (
    Approval,
    BalanceUpdate,
    CorrectionBatch,
    CorrectionBatchRow,
    PointTransaction,
    Stamp,
)
from loyalty.audit import Channel, approving, audited
from loyalty.db import is_postgresql
from loyalty.errors import DomainError
from loyalty.http.limits import MAX_AMOUNT, REASON_MAX, REASON_MIN
from loyalty.preview import dry_run
from loyalty.request_id import using_request_id
from loyalty.spreadsheet import safe_cell

logger = logging.getLogger("ledger.batches")

MAX_ROWS = 100_000
COLUMNS = ("kind", "target", "amount", "reason")
REPORT_COLUMNS = ("line", "kind", "target", "amount", "status", "before", "after", "error")
CHUNK = 1000  # rows parsed, resolved and inserted (and previewed) at a time
# The audited operations of a batch's steps; the last one emits `batch.completed`.
OPERATIONS = ("batch_create", "batch_apply", "batch_reject", "batch_complete")

Status = CorrectionBatch.Status
RowStatus = CorrectionBatchRow.Status
_ENDED = {
    Approval.Status.REJECTED,
    Approval.Status.CANCELED,
    Approval.Status.EXPIRED,
    Approval.Status.FAILED,
}
_ID = re.compile(r"[0-9]{1,18}")
_AMOUNT = re.compile(r"[+-]?[0-9]{1,13}")
_ADVISORY_CLASS = 0x42415443  # "BATC": the advisory lock space of batches


# --- errors ----------------------------------------------------------------------------------


class BatchParseError(DomainError):
    """The file (or the JSON rows) cannot be parsed; the message names the line."""

    code = "invalid"
    kind = "invalid"

    def __init__(self, line: int, message: str, *, field: str = "file") -> None:
        super().__init__(f"line {line}: {message}", line=line)
        self.field = field
        self.line = line


class AlreadyApplied(DomainError):
    code = "already_applied"
    kind = "conflict"
    message = "This batch has already been applied (or sent for approval)."


class BatchRejected(DomainError):
    code = "batch_rejected"
    kind = "conflict"
    message = "This batch's approval was rejected; upload it again as a new batch."


class NotCreator(DomainError):
    code = "permission_denied"
    kind = "forbidden"
    message = "Only the batch's creator (or a superuser) may apply it."


# --- the batch as one correction of approvals ------------------------------------------------


@dataclass(frozen=True)
class BatchCorrection:
    """A batch as approvals hold and apply it (`approvals.register`): applying it queues it
    for the worker (`applying`); the worker moves the values."""

    kind: str = "batch"
    target: type = CorrectionBatch
    takes_amount: bool = False
    creates: bool = False

    def size(self, batch: CorrectionBatch, amount=None) -> int:
        return batch.size

    def apply(self, *, actor, channel: str, target: CorrectionBatch, reason: str, amount=None):
        return _start(target, actor=actor, channel=channel, reason=reason)


BATCH = BatchCorrection()
approvals.register(BATCH)


def _start(batch: CorrectionBatch, *, actor, channel: str, reason: str) -> CorrectionBatch:
    locked = CorrectionBatch.objects.select_for_update(of=("self",)).get(pk=batch.pk)
    if locked.status not in (Status.PREVIEWED, Status.PENDING_APPROVAL):
        raise AlreadyApplied()
    locked.status = Status.APPLYING
    locked.apply_requested_at = locked.apply_requested_at or timezone.now()
    with audited(actor=actor, channel=channel, reason=reason, operation="batch_apply"):
        locked.save()
    return locked


# --- parsing ---------------------------------------------------------------------------------


@dataclass
class Parsed:
    """One row as given: strings from a CSV, JSON values from JSON rows."""

    line: int
    kind: object = None
    target: object = None
    amount: object = None
    reason: object = None


def _decoded_lines(stream: Iterable[bytes]) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    number = 0
    for number, raw in enumerate(stream, 1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            yield decoder.decode(raw)
        except UnicodeDecodeError as exc:
            raise BatchParseError(number, f"not UTF-8 (byte {exc.start + 1} of the line)") from None
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise BatchParseError(max(number, 1), "not UTF-8 (the file ends mid-character)") from None


def parse_csv(stream: Iterable[bytes]) -> Iterator[Parsed]:
    """The rows of a CSV file (binary lines): UTF-8 with or without BOM, header row first."""
    reader = csv.reader(_decoded_lines(stream), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise BatchParseError(1, "the file is empty; its first line names the columns")
        names = [name.strip().lower() for name in header]
        for name in names:
            if name not in COLUMNS:
                raise BatchParseError(
                    1, f"unknown column {name[:40]!r} (columns: {', '.join(COLUMNS)})"
                )
        if len(set(names)) != len(names):
            raise BatchParseError(1, "a column is named twice")
        if "kind" not in names or "target" not in names:
            raise BatchParseError(1, "the first line must name the columns kind and target")
        count = 0
        while True:
            line = reader.line_num + 1
            values = next(reader, None)
            if values is None:
                break
            if not values:
                continue  # a blank line
            if len(values) > len(names):
                raise BatchParseError(line, f"{len(values)} fields; the header has {len(names)}")
            count += 1
            if count > MAX_ROWS:
                raise BatchParseError(line, f"more than {MAX_ROWS} rows")
            yield Parsed(line, **dict(zip(names, values, strict=False)))
    except csv.Error as exc:
        raise BatchParseError(max(reader.line_num, 1), f"not CSV ({exc})") from None
    if count == 0:
        raise BatchParseError(2, "the file has no rows")


def parse_json(rows) -> Iterator[Parsed]:
    """JSON rows: a list of objects; each row's line is its position from 1."""
    if not isinstance(rows, list):
        raise BatchParseError(1, "rows must be a list of objects", field="rows")
    if not rows:
        raise BatchParseError(1, "rows is empty", field="rows")
    if len(rows) > MAX_ROWS:
        raise BatchParseError(MAX_ROWS + 1, f"more than {MAX_ROWS} rows", field="rows")
    for position, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise BatchParseError(position, "a row must be an object", field="rows")
        yield Parsed(position, *(row.get(name) for name in COLUMNS))


# --- validating and resolving ----------------------------------------------------------------


@dataclass
class Checked:
    line: int
    kind: str
    target: str
    amount: int | None = None
    reason: str = ""
    correction: corrections.Correction | None = None
    error: tuple[str, str] | None = None


def _text(value) -> str | None:
    if value is None:
        return ""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value.strip() if isinstance(value, str) else None


def _amount(value) -> tuple[int | None, str | None]:
    """(amount, error) of a row's amount: a non-zero integer, |amount| <= 10^12."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and _AMOUNT.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value == 0:
        return None, "amount: must be a non-zero integer"
    if abs(value) > MAX_AMOUNT:
        return None, f"amount: at most {MAX_AMOUNT} in absolute value"
    return value, None


def _check(row: Parsed, *, default_reason: str, kinds: frozenset[str]) -> Checked:
    kind, target = _text(row.kind), _text(row.target)
    checked = Checked(row.line, (kind or "")[:40], (target or "")[:255])
    checked.correction = corrections.BY_KIND.get(kind or "")
    if checked.correction is None:
        known = ", ".join(corrections.BY_KIND)
        checked.error = ("invalid", f"kind: unknown kind {checked.kind!r} (one of {known})")
        return checked
    if kind not in kinds:
        checked.error = ("permission_denied", f"kind: you may not apply {kind}")
        return checked
    if not target:
        checked.error = ("invalid", "target: required")
        return checked
    raw_amount = row.amount if not isinstance(row.amount, str) else row.amount.strip()
    if checked.correction.takes_amount:
        if raw_amount in (None, ""):
            checked.error = ("invalid", "amount: required")
            return checked
        checked.amount, error = _amount(raw_amount)
        if error:
            checked.error = ("invalid", error)
            return checked
    elif raw_amount not in (None, ""):
        checked.error = ("invalid", f"amount: {kind} takes no amount")
        return checked
    reason = _text(row.reason)
    if reason is None:
        checked.error = ("reason_required", "reason: must be text")
        return checked
    checked.reason = reason or default_reason
    if not REASON_MIN <= len(checked.reason) <= REASON_MAX:
        checked.reason = checked.reason[:REASON_MAX]
        checked.error = ("reason_required", f"reason: {REASON_MIN} to {REASON_MAX} characters")
    return checked


_MODELS = {
    "deduct_stamp": Stamp,
    "cancel_balance_update": BalanceUpdate,
    "revert_points": PointTransaction,
    "adjust_balance": Customer,
    "adjust_points": Customer,
}


def _subject(kind: str, target) -> int:
    """The value a row moves, as one number (see CorrectionBatchRow.subject)."""
    if kind == "deduct_stamp":
        return target.pk * 4 + 2
    customer_id = target.pk if isinstance(target, Customer) else target.customer_id
    return customer_id * 4 + (1 if kind in ("adjust_points", "revert_points") else 0)


def _customers(merchant_id: int, targets: set[str]) -> dict[str, Customer | None]:
    """Each target text -> the one customer of the merchant it names by member id, email or
    wallet address (email and wallet case-insensitively); None when none or several do."""
    lowered = {t.lower() for t in targets}
    found = Customer.objects.filter(merchant_id=merchant_id).filter(
        Q(member_id__in=targets) | Q(email__in=lowered) | Q(wallet_address__in=lowered)
    )
    by_member, by_email, by_wallet = {}, {}, {}
    for customer in found:
        by_member[customer.member_id] = customer
        by_email[customer.email] = customer
        by_wallet[customer.wallet_address] = customer
    answer = {}
    for text in targets:
        matches = {by_member.get(text), by_email.get(text.lower()), by_wallet.get(text.lower())}
        matches.discard(None)
        answer[text] = matches.pop() if len(matches) == 1 else None
    return answer


def _resolve(merchant_id: int, rows: list[Checked]) -> list[object | None]:
    """Each row's target object within the merchant (None: unknown, or another merchant's),
    with one query per kind of target."""
    wanted: dict[type, set] = {}
    for row in rows:
        if row.error is None:
            model = _MODELS[row.correction.kind]
            if model is Customer or _ID.fullmatch(row.target):
                wanted.setdefault(model, set()).add(_key(model, row.target))
    found: dict[type, dict] = {}
    for model, keys in wanted.items():
        if model is Customer:
            found[model] = _customers(merchant_id, keys)
        else:
            objects = model.objects.filter(merchant_id=merchant_id, pk__in=[int(k) for k in keys])
            found[model] = {str(obj.pk): obj for obj in objects}
    answer = []
    for row in rows:
        model = _MODELS[row.correction.kind] if row.error is None else None
        if model is None or (model is not Customer and not _ID.fullmatch(row.target)):
            answer.append(None)
        else:
            answer.append(found.get(model, {}).get(_key(model, row.target)))
    return answer


def _key(model, target: str) -> str:
    """A target as looked up: ids without leading zeros."""
    return target if model is Customer else str(int(target))


def _load(merchant_id: int, rows) -> dict[tuple[type, int], object]:
    """The targets of stored rows (by id), with one query per model."""
    ids: dict[type, set[int]] = {}
    for row in rows:
        ids.setdefault(_MODELS[row.kind], set()).add(row.target_id)
    loaded = {}
    for model, pks in ids.items():
        for obj in model.objects.filter(merchant_id=merchant_id, pk__in=pks):
            loaded[model, obj.pk] = obj
    return loaded


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- lanes: several connections at once ------------------------------------------------------


def _lane_count(name: str, default: int, *, own_blocks: int) -> int:
    """How many connections a step may use at once (setting `name`): one unless the database
    is PostgreSQL and the caller's transaction is the step's own (`own_blocks` atomic blocks
    deep), since other connections see only committed rows (a caller's open transaction, a
    test's, would be invisible to them)."""
    wanted = int(getattr(settings, name, default) or 1)
    if wanted <= 1 or not is_postgresql(connection):
        return 1
    if len(connection.atomic_blocks) != own_blocks:
        return 1
    return wanted


class _Lanes:
    """`count` threads, each with a Django connection of its own (closed when its thread
    ends); `run` calls functions on them, each in a copy of the caller's context (audit,
    request id), and answers their results in order (or raises the first error)."""

    def __init__(self, count: int) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"batch-lane-{i}", daemon=True)
            for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def _serve(self) -> None:
        try:
            while (job := self._jobs.get()) is not None:
                context, fn, future = job
                try:
                    future.set_result(context.run(fn))
                except BaseException as exc:  # handed to the caller
                    future.set_exception(exc)
        finally:
            connections.close_all()  # this thread's connections only

    def run(self, fns: list[Callable[[], object]]) -> list[object]:
        futures = []
        for fn in fns:
            future: Future = Future()
            self._jobs.put((contextvars.copy_context(), fn, future))
            futures.append(future)
        errors = [f.exception() for f in futures]  # waits for every one
        for error in errors:
            if error is not None:
                raise error
        return [f.result() for f in futures]

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> _Lanes:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _customer_of(row, targets: dict) -> int:
    """The customer whose rows a row locks (every service locks its target's customer)."""
    target = targets.get((_MODELS[row.kind], row.target_id))
    if target is None:
        return 0
    return target.pk if isinstance(target, Customer) else target.customer_id


def _partition(rows: list, targets: dict, count: int) -> list[list]:
    """`rows` split into at most `count` lists by customer, each in the order given: one
    customer's rows (so each of its subjects' rows) stay in order in one list, and two lists
    never lock the same customer."""
    if count <= 1:
        return [rows]
    parts: list[list] = [[] for _ in range(count)]
    for row in rows:
        parts[_customer_of(row, targets) % count].append(row)
    return [part for part in parts if part]


@contextmanager
def _no_savepoints() -> Iterator[None]:
    """Atomic blocks opened inside (the services' own) make no savepoint on this connection:
    two round trips less per service call. A block that raises then leaves the transaction
    to be rolled back (Django's needs_rollback): callers run this only where they roll back
    an enclosing block of their own on any refusal (the preview's checkpoint, a row's
    transaction)."""
    features = connection.features
    previous = vars(features).get("uses_savepoints")
    features.uses_savepoints = False
    try:
        yield
    finally:
        if previous is None:
            del features.uses_savepoints  # the class's value again
        else:
            features.uses_savepoints = previous


# --- effect ----------------------------------------------------------------------------------


def _effect(kind: str, result, amount: int | None) -> tuple[int, int]:
    """(before, after) of the value a correction moved, from the service's answer."""
    if kind == "deduct_stamp":
        return result.count + 1, result.count
    if kind == "cancel_balance_update":
        after = result.customer.balance
        return after + result.signed_amount, after
    if kind == "revert_points":
        return result.points_after - result.points, result.points_after
    after = result.balance_after if kind == "adjust_balance" else result.points_after
    return after - amount, after


def _refusal(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, DomainError):
        return exc.code, exc.message
    return "conflict", "The database refused the change."


# --- create: parse and preview ---------------------------------------------------------------


def allowed_kinds(actor) -> frozenset[str]:
    """The kinds of row `actor` may put in a batch: those whose permission they hold."""
    return frozenset(c.kind for c in corrections.CORRECTIONS if actor.has_perm(c.permission))


@transaction.atomic
def create_batch(
    *,
    actor,
    channel: str,
    merchant,
    reason: str,
    file=None,
    rows=None,
    filename: str = "",
) -> CorrectionBatch:
    """Parse `file` (binary CSV lines) or `rows` (JSON), store and preview every row.
    A parse error (BatchParseError) creates nothing."""
    reason = approvals.checked_reason(reason)
    parsed = parse_csv(file) if file is not None else parse_json(rows)
    batch = CorrectionBatch(
        merchant=merchant,
        reason=reason,
        created_by=actor,
        channel=channel,
        source="csv" if file is not None else "json",
        filename=(filename or "")[:255],
        created=timezone.now(),
    )
    with audited(actor=actor, channel=channel, reason=reason, operation="batch_create"):
        batch.save()
    kinds = allowed_kinds(actor)
    total = 0
    for chunk in _chunks(parsed, CHUNK):
        checked = [_check(row, default_reason=reason, kinds=kinds) for row in chunk]
        targets = _resolve(merchant.pk, checked)
        objects = []
        for row, target in zip(checked, targets, strict=True):
            if row.error is None and target is None:
                row.error = ("not_found", f"target: no such {_noun(row.kind)} in this merchant")
            objects.append(_stored(batch, row, target))
        CorrectionBatchRow.objects.bulk_create(objects)
        total += len(objects)
    _preview(batch, actor=actor, channel=channel)
    counts = CorrectionBatchRow.objects.filter(batch=batch, status=RowStatus.READY).aggregate(
        ready=Count("id"), size=Sum("size")
    )
    batch.total = total
    batch.ready = counts["ready"]
    batch.invalid = total - counts["ready"]
    batch.size = counts["size"] or 0
    with audited(actor=actor, channel=channel, reason=reason, operation="batch_create"):
        batch.save()
    return batch


def _noun(kind: str) -> str:
    return _MODELS[kind]._meta.verbose_name


def _stored(batch: CorrectionBatch, row: Checked, target) -> CorrectionBatchRow:
    stored = CorrectionBatchRow(
        batch=batch,
        line=row.line,
        kind=row.kind,
        target=row.target,
        amount=row.amount,
        reason=row.reason,
        status=RowStatus.INVALID if row.error else RowStatus.READY,
    )
    if row.error:
        stored.error_code, stored.error = row.error
    else:
        stored.target_id = target.pk
        stored.subject = _subject(row.kind, target)
        stored.size = row.correction.size(target, row.amount)
    return stored


_PREVIEW_FIELDS = ("id", "line", "kind", "target_id", "amount", "reason", "subject")


def _preview(batch: CorrectionBatch, *, actor, channel: str) -> None:
    """Run every ready row through its service, chunk by chunk, each chunk rolled back; rows
    of one subject stay in one chunk, in line order, so a target named twice is previewed
    cumulatively. Rows the service refuses become `invalid` with its refusal.

    With BATCH_PREVIEW_THREADS > 1 (PostgreSQL, create_batch's own transaction), a chunk's
    rows are split by customer over that many connections, each part in a rolled-back
    transaction of its own (parts lock no customer in common); this thread, which alone sees
    the batch's uncommitted rows, reads them and writes the results."""
    lanes = _lane_count("BATCH_PREVIEW_THREADS", 1, own_blocks=1)
    pool = _Lanes(lanes) if lanes > 1 else None
    try:
        for chunk in _preview_chunks(batch):
            targets = _load(batch.merchant_id, chunk)
            parts = _partition(chunk, targets, lanes)
            jobs = [
                partial(dry_run, partial(_try, part, targets, actor, channel)) for part in parts
            ]
            results = pool.run(jobs) if pool and len(jobs) > 1 else [job() for job in jobs]
            _write([result for part in results for result in part])
    finally:
        if pool is not None:
            pool.close()


def _preview_chunks(batch: CorrectionBatch) -> Iterator[list[CorrectionBatchRow]]:
    """The ready rows by (subject, line), CHUNK at a time, never splitting a subject."""
    ready = CorrectionBatchRow.objects.filter(batch=batch, status=RowStatus.READY)
    position = None
    while True:
        page = ready.order_by("subject", "line")
        if position is not None:
            subject, line = position
            page = page.filter(Q(subject__gt=subject) | Q(subject=subject, line__gt=line))
        chunk = list(page.only(*_PREVIEW_FIELDS)[:CHUNK])
        if not chunk:
            return
        last = chunk[-1]
        chunk += list(  # the rest of the last subject: it must not be split
            ready.filter(subject=last.subject, line__gt=last.line)
            .order_by("line")
            .only(*_PREVIEW_FIELDS)
        )
        position = (chunk[-1].subject, chunk[-1].line)
        yield chunk


class _Refused(Exception):
    """A service refused a row inside a checkpoint without savepoints: redo the block."""


# Rows previewed between two checkpoints (savepoints) without a savepoint per service call;
# the block doubles while no row is refused, and a refusal redoes its block row by row.
_BLOCK_MIN, _BLOCK_MAX = 8, 256


def _try(chunk, targets, actor, channel) -> list[tuple]:
    """Preview results of `chunk`, in a transaction the caller rolls back.

    A block of rows runs under one checkpoint savepoint, its service calls without their
    own; if any is refused, the block is rolled back to its checkpoint (whatever the refused
    call had written goes with it) and run again with a savepoint per call, as before, so
    every row is previewed on exactly the rows before it."""
    results: list[tuple] = []
    start, block = 0, _BLOCK_MIN
    while start < len(chunk):
        rows = chunk[start : start + block]
        try:
            with transaction.atomic(), _no_savepoints():
                done = [_try_row(row, targets, actor, channel, strict=True) for row in rows]
            block = min(block * 2, _BLOCK_MAX)
        except _Refused:
            done = [_try_row(row, targets, actor, channel, strict=False) for row in rows]
            block = _BLOCK_MIN
        results += done
        start += len(rows)
    return results


def _try_row(row, targets, actor, channel, *, strict: bool) -> tuple:
    correction = corrections.BY_KIND[row.kind]
    try:
        result = correction.apply(
            actor=actor,
            channel=channel,
            target=targets[_MODELS[row.kind], row.target_id],
            reason=row.reason,
            amount=row.amount,
        )
    except (DomainError, IntegrityError) as exc:
        if strict:
            raise _Refused() from exc
        code, message = _refusal(exc)
        return (row.pk, RowStatus.INVALID, None, None, code, message, 0)
    before, after = _effect(row.kind, result, row.amount)
    return (row.pk, RowStatus.READY, before, after, "", "", None)


def _write(results: list[tuple]) -> None:
    """Store preview results (id, status, before, after, code, error, size or None)."""
    if not results:
        return
    if is_postgresql(connection):
        qn = connection.ops.quote_name
        table = qn(CorrectionBatchRow._meta.db_table)
        columns = list(zip(*results, strict=True))
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS r SET status = v.status, {qn('before')} = v.b, "  # noqa: S608
                f"{qn('after')} = v.a, error_code = v.code, error = v.error, "
                "size = COALESCE(v.size, r.size) "
                "FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::bigint[], %s::text[], "
                "%s::text[], %s::bigint[]) AS v(id, status, b, a, code, error, size) "
                "WHERE r.id = v.id",
                [list(column) for column in columns],
            )
        return
    for pk, status, before, after, code, error, size in results:
        fields = {"status": status, "before": before, "after": after}
        fields |= {"error_code": code, "error": error}
        if size is not None:
            fields["size"] = size
        CorrectionBatchRow.objects.filter(pk=pk).update(**fields)


# --- apply -----------------------------------------------------------------------------------


def status_of(batch: CorrectionBatch) -> str:
    """The status as the wire reads it: a batch whose approval ended without applying it reads
    `rejected` at once (the worker then records it so)."""
    ended = batch.approval_id is not None and approvals.status_of(batch.approval) in _ENDED
    if batch.status == Status.PENDING_APPROVAL and ended:
        return Status.REJECTED
    return batch.status


@dataclass(frozen=True)
class Applied:
    batch: CorrectionBatch
    approval: Approval | None = None


@transaction.atomic
def apply_batch(batch: CorrectionBatch, actor, *, channel: str | None = None) -> Applied:
    """Queue the batch for the worker, or hold it for approval (then `pending_approval`).
    Once per batch: under the batch's row lock, a second call is AlreadyApplied."""
    locked = (
        CorrectionBatch.objects.select_for_update(of=("self",))
        .select_related("created_by", "approval")
        .get(pk=batch.pk)
    )
    if locked.created_by_id != actor.pk and not actor.is_superuser:
        raise NotCreator()
    status = status_of(locked)
    if status == Status.REJECTED:
        raise BatchRejected()
    if status != Status.PREVIEWED:
        raise AlreadyApplied()
    # As its creator's correction, through its creator's channel: it counts toward their
    # limits, and the rows are applied as theirs.
    submitted = approvals.submit(
        BATCH,
        actor=locked.created_by,
        channel=locked.channel,
        target=locked,
        reason=locked.reason,
    )
    if not submitted.held:
        return Applied(submitted.result)
    locked.status = Status.PENDING_APPROVAL
    locked.approval = submitted.approval
    locked.apply_requested_at = timezone.now()
    with audited(actor=actor, channel=channel or locked.channel, reason=locked.reason,
                 operation="batch_apply"):  # fmt: skip
        locked.save()
    return Applied(locked, submitted.approval)


# --- the worker's step -----------------------------------------------------------------------


def _settle_rejected() -> int:
    """Record `rejected` on batches whose approval was rejected, canceled, expired or failed."""
    due = CorrectionBatch.objects.filter(
        status=Status.PENDING_APPROVAL, approval__status__in=_ENDED
    ).values_list("pk", flat=True)[:100]
    settled = 0
    for pk in due:
        with transaction.atomic():
            batch = CorrectionBatch.objects.select_for_update(of=("self",)).get(pk=pk)
            if batch.status != Status.PENDING_APPROVAL:
                continue
            batch.status = Status.REJECTED
            with audited(actor=None, channel=Channel.SYSTEM, operation="batch_reject"):
                batch.save()
            settled += 1
    return settled


class _BatchLock:
    """A session advisory lock on one batch: one worker applies it at a time (PostgreSQL
    frees it when the holder's connection ends, a killed worker's too)."""

    def __init__(self, pk: int) -> None:
        self.key = [_ADVISORY_CLASS, pk % 2**31]

    def acquire(self) -> bool:
        if not is_postgresql(connection):
            return True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", self.key)
            return cursor.fetchone()[0]

    def release(self) -> None:
        if is_postgresql(connection):
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", self.key)


def run_due(*, chunk: int | None = None) -> int:
    """One step of the worker: settle rejected batches, then apply the next chunk of one
    applying batch (completing it when no ready row is left). Answers how much it did."""
    done = _settle_rejected()
    chunk = chunk or int(getattr(settings, "BATCH_CHUNK", 500))
    for pk in (
        CorrectionBatch.objects.filter(status=Status.APPLYING)
        .order_by("id")
        .values_list("pk", flat=True)[:20]
    ):
        lock = _BatchLock(pk)
        if not lock.acquire():
            continue  # another worker has it
        try:
            batch = CorrectionBatch.objects.select_related("created_by", "approval").get(pk=pk)
            if batch.status != Status.APPLYING:
                continue
            return done + _apply_chunk(batch, chunk)
        finally:
            lock.release()
    return done


def _apply_chunk(batch: CorrectionBatch, size: int) -> int:
    """Chunks of the next `size` ready rows in line order, each row in its own transaction,
    for up to BATCH_STEP_SECONDS (at least one chunk). With BATCH_THREADS > 1 (PostgreSQL)
    each chunk is split by customer over that many connections, kept for the whole step
    (a connection's start and its statements' preparation are paid once a step, not once a
    chunk): one customer's rows (so each subject's) still apply in line order on one of
    them, and all of a chunk's rows end before the next chunk is read, so a subject's rows
    apply in line order across chunks too; transactions of different connections commit
    together (PostgreSQL's group commit shares the WAL flush)."""
    lanes = _lane_count("BATCH_THREADS", 1, own_blocks=0)
    pause = float(getattr(settings, "BATCH_PAUSE_SECONDS", 0) or 0)
    deadline = time.monotonic() + float(getattr(settings, "BATCH_STEP_SECONDS", 0) or 0)
    pool = _Lanes(lanes) if lanes > 1 else None
    done = 0
    try:
        while True:
            rows = list(
                CorrectionBatchRow.objects.filter(batch=batch, status=RowStatus.READY)
                .order_by("line")
                .only(*_APPLY_FIELDS)[:size]
            )
            if not rows:
                if done:
                    return done  # the next step completes it
                _complete(batch)
                return 1
            targets = _load(batch.merchant_id, rows)
            parts = _partition(rows, targets, lanes)
            jobs = [partial(_apply_rows, batch, part, targets) for part in parts]
            if pool is None:
                jobs[0]()
            else:
                pool.run(jobs)
            done += len(rows)
            if pause:
                time.sleep(pause)
            if len(rows) < size or time.monotonic() >= deadline:
                return done
    finally:
        if pool is not None:
            pool.close()


_APPLY_FIELDS = ("id", "line", "kind", "target_id", "amount", "reason")


def _apply_rows(batch: CorrectionBatch, rows: list[CorrectionBatchRow], targets: dict) -> None:
    approval = batch.approval
    context = nullcontext()
    if approval is not None and approval.status == Approval.Status.APPROVED:
        context = approving(
            approver=approval.decided_by,
            approval_id=approval.pk,
            reason=approval.decision_reason,
        )
    with context:
        for row in rows:
            with using_request_id(f"batch-{batch.pk}:{row.line}"):
                _apply_row(batch, row, targets.get((_MODELS[row.kind], row.target_id)))


def _row_table() -> str:
    return connection.ops.quote_name(CorrectionBatchRow._meta.db_table)


def _mark(row: CorrectionBatchRow, status: str, **fields) -> bool:
    """Mark a ready row `status` (with `fields`), in the current transaction; False when it
    is no longer ready (another worker has it). One statement: the UPDATE takes the row's
    lock and re-checks `ready` on the newest version when it had to wait."""
    fields = {"status": status, "applied_at": timezone.now(), **fields}
    meta, qn = CorrectionBatchRow._meta, connection.ops.quote_name
    columns = [meta.get_field(name) for name in fields]
    assignments = ", ".join(f"{qn(field.column)} = %s" for field in columns)
    params = [
        f.get_db_prep_save(v, connection) for f, v in zip(columns, fields.values(), strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_row_table()} SET {assignments} "  # noqa: S608
            "WHERE id = %s AND status = %s",
            [*params, row.pk, RowStatus.READY],
        )
        return cursor.rowcount == 1


def _apply_row(batch: CorrectionBatch, row: CorrectionBatchRow, target) -> None:
    """One row, in its own transaction: applied (its mark committing with its ledger move) or
    refused (nothing moved; the row marked in a transaction of its own). Adjustments on
    PostgreSQL outside a caller's transaction: `_apply_settled`, one statement. The others:

    The service runs first, without a savepoint (the row's transaction is its checkpoint),
    and the row is marked `applied` only if it is still `ready`, in the same transaction: a
    worker that finds it marked (it waited for the other's commit on the customer's lock,
    then on the row's) rolls its move back. So a row applies at most once, and a killed
    worker's transaction takes its move and its mark with it."""
    refusal = None
    correction = corrections.BY_KIND[row.kind]
    if target is None:
        refusal = _refusal(DomainError("The row's target no longer exists."))
    elif correction.settles and statements.available() and not connection.in_atomic_block:
        refusal = _apply_settled(batch, row, target, correction)
    else:
        with transaction.atomic():
            try:
                with _no_savepoints():
                    result = corrections.BY_KIND[row.kind].apply(
                        actor=batch.created_by,
                        channel=batch.channel,
                        target=target,
                        reason=row.reason,
                        amount=row.amount,
                    )
            except (DomainError, IntegrityError) as exc:
                refusal = _refusal(exc)
                transaction.set_rollback(True)  # whatever the refused call wrote
            else:
                before, after = _effect(row.kind, result, row.amount)
                if not _mark(
                    row, RowStatus.APPLIED, before=before, after=after, result_id=result.pk
                ):
                    transaction.set_rollback(True)  # applied by another worker meanwhile
    if refusal is not None:
        with transaction.atomic():
            code, message = refusal
            _mark(row, RowStatus.REFUSED, error_code=code, error=message)


def _apply_settled(batch, row, target, correction) -> tuple[str, str] | None:
    """A row whose service is one statement (the adjustments), in one round trip: that
    statement locks the row if it is still `ready`, moves, and marks it `applied` with the
    move's before, after and new entry (ledger.statements.Settle); in autocommit it is the
    row's transaction. Answers the refusal to record, if the service refused a row that was
    still ready (None: applied, or no longer ready: another worker has it)."""
    settle = statements.Settle(
        CorrectionBatchRow,
        row.pk,
        expect={"status": RowStatus.READY},
        values={"status": RowStatus.APPLIED, "applied_at": timezone.now()},
        before="before",
        after="after",
        entry="result_id",
    )
    try:
        correction.apply(
            actor=batch.created_by,
            channel=batch.channel,
            target=target,
            reason=row.reason,
            amount=row.amount,
            settle=settle,
        )
    except ClaimTaken:
        return None  # not ready any more: settled (or refused) by another worker
    except (DomainError, IntegrityError) as exc:
        return _refusal(exc)  # nothing moved; the refused mark re-checks `ready`
    return None


def _counts(batch: CorrectionBatch) -> dict[str, int]:
    counts = dict.fromkeys(RowStatus.values, 0)
    for status, count in (
        CorrectionBatchRow.objects.filter(batch=batch)
        .values_list("status")
        .annotate(count=Count("id"))
        .values_list("status", "count")
    ):
        counts[status] = count
    return counts


def _complete(batch: CorrectionBatch) -> None:
    with transaction.atomic():
        locked = CorrectionBatch.objects.select_for_update(of=("self",)).get(pk=batch.pk)
        if locked.status != Status.APPLYING:
            return
        counts = _counts(locked)
        if counts[RowStatus.READY]:
            return
        locked.applied = counts[RowStatus.APPLIED]
        locked.refused = counts[RowStatus.REFUSED]
        locked.status = Status.COMPLETED
        locked.completed_at = timezone.now()
        with audited(actor=None, channel=Channel.SYSTEM, operation="batch_complete"):
            locked.save()
            events.record(
                merchant_id=locked.merchant_id,
                customer_id=None,
                sequence=None,
                data={"batch": completed_data(locked)},
            )


def completed_data(batch: CorrectionBatch) -> dict:
    return {
        "id": batch.pk,
        "total": batch.total,
        "applied": batch.applied,
        "refused": batch.refused,
    }


# --- reading ---------------------------------------------------------------------------------


def progress(batch: CorrectionBatch) -> dict:
    """The batch as the staff API (and the admin's progress bar) shows it; while applying,
    `applied` and `refused` are counted from the rows."""
    applied, refused = batch.applied, batch.refused
    if batch.status == Status.APPLYING:
        counts = _counts(batch)
        applied, refused = counts[RowStatus.APPLIED], counts[RowStatus.REFUSED]
    approval = batch.approval if batch.approval_id else None
    return {
        "id": batch.pk,
        "status": status_of(batch),
        "merchant": batch.merchant_id,
        "reason": batch.reason,
        "source": batch.source,
        "filename": batch.filename,
        "total": batch.total,
        "ready": batch.ready,
        "invalid": batch.invalid,
        "applied": applied,
        "refused": refused,
        "size": batch.size,
        "created_by": batch.created_by.get_username(),
        "created": events.iso_utc(batch.created),
        "apply_requested_at": events.iso_utc(batch.apply_requested_at),
        "completed_at": events.iso_utc(batch.completed_at),
        "approval": approvals.serialize(approval) if approval is not None else None,
    }


def report_rows(batch: CorrectionBatch, status: str | None = None):
    """The batch's rows in line order (a queryset: page it, or iterate it in chunks)."""
    rows = CorrectionBatchRow.objects.filter(batch=batch).order_by("line")
    if status:
        rows = rows.filter(status=status)
    return rows


def row_data(row: CorrectionBatchRow) -> dict:
    return {
        "line": row.line,
        "kind": row.kind,
        "target": row.target,
        "amount": row.amount,
        "status": row.status,
        "before": row.before,
        "after": row.after,
        "error": row.error or None,
        "error_code": row.error_code or None,
    }


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return safe_cell(value)  # text from the file: never a formula in a spreadsheet


class _Echo:
    def write(self, value: str) -> str:
        return value


def report_csv(batch: CorrectionBatch, status: str | None = None) -> Iterator[str]:
    """The report as CSV lines (REPORT_COLUMNS), streamed in keyset chunks of lines."""
    writer = csv.writer(_Echo())
    yield writer.writerow(REPORT_COLUMNS)
    after = 0
    while True:
        chunk = list(report_rows(batch, status).filter(line__gt=after)[:CHUNK])
        if not chunk:
            return
        for row in chunk:
            data = row_data(row)
            yield writer.writerow([_cell(data[name]) for name in REPORT_COLUMNS])
        after = chunk[-1].line
