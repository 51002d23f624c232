"""Database helpers: the one "is this PostgreSQL?" test, and the triggers that make ledger
and history rows append-only.

The triggers are PostgreSQL-only; on SQLite (the zero-setup `make run`) the operations do
nothing and the CHECK and UNIQUE constraints, which both engines enforce, still hold.
"""

import functools
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, migrations, models, transaction
from django.db.backends.utils import CursorWrapper


def is_postgresql(connection=None) -> bool:
    """Whether `connection` (default: the default database's) is PostgreSQL. The one-statement
    fast paths, advisory locks, estimates and triggers are PostgreSQL's; SQLite runs the demo
    through the ORM."""
    if connection is None:
        connection = connections[DEFAULT_DB_ALIAS]
    return connection.vendor == "postgresql"


@functools.lru_cache(maxsize=256)
def numbered(sql: str) -> str:
    """`sql` with its `%s` placeholders as PostgreSQL's `$1, $2, ...` (and `%%` as `%`)."""
    parts = sql.split("%%")
    count = 0
    out = []
    for part in parts:
        pieces = part.split("%s")
        text = pieces[0]
        for piece in pieces[1:]:
            count += 1
            text += f"${count}" + piece
        out.append(text)
    return "%".join(out)


def prepared_cursor(connection) -> CursorWrapper:
    """A cursor whose statements PostgreSQL parses and plans once per connection.

    Django binds parameters on the client (psycopg's ClientCursor, which never prepares): a
    statement's text differs with every value, so PostgreSQL parses and plans it again each
    time. For the hot paths' few fixed statements that planning is most of their cost (a
    move's CTE: six tables). This cursor binds on the server (psycopg's RawCursor: the
    `%s` placeholders become `$n` once per statement text, here, instead of psycopg's parse
    on every call, which it caches only for statements under 4 KiB), and psycopg prepares
    a statement once the connection has run it `prepare_threshold` times (settings:
    DATABASES OPTIONS; psycopg keeps the 100 most used per connection). Statements through
    it must give each parameter a type PostgreSQL can infer (a column compared or
    assigned, or a CAST) and take their parameters as a sequence. It goes through Django's
    wrappers, so query capture and `execute_wrapper` see it. Elsewhere (SQLite) it is the
    ordinary cursor.
    """
    if not is_postgresql(connection):
        return connection.cursor()
    connection.ensure_connection()
    raw = _raw_cursor_class()(connection.connection)
    if connection.queries_logged:
        return connection.make_debug_cursor(raw)
    return connection.make_cursor(raw)


@functools.cache
def _raw_cursor_class():
    import psycopg  # PostgreSQL only
    from django.db.backends.postgresql.base import CursorMixin

    class NumberedRawCursor(CursorMixin, psycopg.RawCursor):
        def execute(self, query, params=None, **kwargs):
            return super().execute(numbered(query), params, **kwargs)

    return NumberedRawCursor


@dataclass
class Claim:
    """A row whose unique key makes something happen at most once (the Points API's request
    id: once per credential). `claim()` inserts it alone; a ledger move can insert it in its
    own statement and move only if it was new (ledger.statements.move_found), so that both
    cost one round trip. `taken`: True the row was inserted, False it existed already, None
    not tried yet."""

    model: type[models.Model]
    values: dict  # attname -> value, every concrete field but the primary key
    taken: bool | None = None


def claim(claim: Claim, connection=None) -> bool:
    """Insert the claim row alone; True if it was new (committed at once in autocommit)."""
    connection = connection or connections[DEFAULT_DB_ALIAS]
    if not is_postgresql(connection):  # the ORM; a savepoint keeps a caller's transaction
        try:
            with transaction.atomic(using=connection.alias):
                claim.model.objects.using(connection.alias).create(**claim.values)
        except IntegrityError:
            claim.taken = False
        else:
            claim.taken = True
        return claim.taken
    qn = connection.ops.quote_name
    fields = [f for f in claim.model._meta.concrete_fields if not f.primary_key]
    sql = (
        f"INSERT INTO {qn(claim.model._meta.db_table)} "  # noqa: S608 (names from _meta)
        f"({', '.join(qn(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT DO NOTHING"
    )
    values = [f.get_db_prep_save(claim.values[f.attname], connection) for f in fields]
    with prepared_cursor(connection) as cursor:
        cursor.execute(sql, values)
        claim.taken = cursor.rowcount == 1
    return claim.taken


class CoveringIndex(models.Index):
    """An index with non-key columns (`include`, PostgreSQL's INCLUDE) where the database has
    them, and the same index without them elsewhere (SQLite, the demo).

    Django does that to a plain `Index(include=...)` too, but warns about it on every check
    (models.W040) though nothing is wrong. Here the model's index holds the columns as
    `covering`, adds them to its SQL only where supported, and describes itself to migrations
    as the plain `models.Index(include=...)` it stands for: the migration files and
    `makemigrations` stay as they were, and they import no app code.
    """

    def __init__(self, *args, include=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.covering = tuple(include)

    def deconstruct(self):
        _path, args, kwargs = super().deconstruct()
        if self.covering:
            kwargs["include"] = self.covering
        return "django.db.models.Index", args, kwargs

    def as_index(self) -> models.Index:
        """The plain index this stands for (what the migration files hold)."""
        _path, args, kwargs = self.deconstruct()
        return models.Index(*args, **kwargs)

    def __eq__(self, other):
        # Equal to the plain index it stands for, so the autodetector sees no change.
        if isinstance(other, models.Index):
            return self.deconstruct() == other.deconstruct()
        return NotImplemented

    __hash__ = models.Index.__hash__

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.features.supports_covering_indexes:
            return self.as_index().create_sql(model, schema_editor, using=using, **kwargs)
        return super().create_sql(model, schema_editor, using=using, **kwargs)


# restrict_violation (SQLSTATE 23001) surfaces as django.db.IntegrityError.
FORBID_FUNCTION = """
CREATE OR REPLACE FUNCTION loyalty_forbid() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% on % is forbidden: %', TG_OP, TG_TABLE_NAME, TG_ARGV[0]
        USING ERRCODE = 'restrict_violation';
END
$$ LANGUAGE plpgsql;
"""


class PostgresSQL(migrations.RunSQL):
    """RunSQL that runs on PostgreSQL only."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if is_postgresql(schema_editor.connection):
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if is_postgresql(schema_editor.connection):
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def forbid_function() -> PostgresSQL:
    return PostgresSQL(FORBID_FUNCTION, migrations.RunSQL.noop)


def append_only(table: str) -> PostgresSQL:
    """No UPDATE and no DELETE, ever (history tables)."""
    name = f"{table}_append_only"
    return PostgresSQL(
        f"CREATE TRIGGER {name} BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW "
        f"EXECUTE FUNCTION loyalty_forbid('history is append-only');",
        f"DROP TRIGGER IF EXISTS {name} ON {table};",
    )


def no_delete(table: str) -> PostgresSQL:
    name = f"{table}_no_delete"
    return PostgresSQL(
        f"CREATE TRIGGER {name} BEFORE DELETE ON {table} FOR EACH ROW "
        f"EXECUTE FUNCTION loyalty_forbid('rows are never deleted; deactivate or cancel');",
        f"DROP TRIGGER IF EXISTS {name} ON {table};",
    )


def frozen_columns(
    table: str, columns: list[str], *, when: str = "TRUE", suffix: str = "frozen"
) -> PostgresSQL:
    """Forbid UPDATEs that change any of `columns` (while `when`, over OLD, holds)."""
    name = f"{table}_{suffix}"
    old = ", ".join(f"OLD.{c}" for c in columns)
    new = ", ".join(f"NEW.{c}" for c in columns)
    return PostgresSQL(
        f"""
        CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$
        BEGIN
            IF ({when}) AND ROW({old}) IS DISTINCT FROM ROW({new}) THEN
                RAISE EXCEPTION 'UPDATE of % on {table} is forbidden: ledger rows are immutable',
                    '{", ".join(columns)}' USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN NEW;
        END
        $$ LANGUAGE plpgsql;
        CREATE TRIGGER {name} BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {name}();
        """,
        f"DROP TRIGGER IF EXISTS {name} ON {table}; DROP FUNCTION IF EXISTS {name}();",
    )
