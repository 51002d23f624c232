"""loyalty.db.prepared_cursor: server-bound, numbered once, prepared after the threshold."""

import pytest
from django.db import connection

from loyalty.db import numbered, prepared_cursor


def test_placeholders_are_numbered_and_percent_signs_kept():
    assert numbered("a = %s AND b LIKE 'x%%' AND c = %s") == "a = $1 AND b LIKE 'x%' AND c = $2"
    assert numbered("SELECT 1") == "SELECT 1"


@pytest.mark.django_db
def test_a_repeated_statement_is_prepared_on_the_server():
    threshold = connection.settings_dict["OPTIONS"]["prepare_threshold"]
    sql = "SELECT CAST(%s AS integer) + CAST(%s AS integer)"
    for _ in range(threshold + 2):
        with prepared_cursor(connection) as cursor:
            cursor.execute(sql, [2, 3])
            assert cursor.fetchone() == (5,)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("$1" in text and "$2" in text and "integer" in text for text in prepared), prepared
