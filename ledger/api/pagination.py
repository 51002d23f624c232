"""Pagination: keyset cursors on the big tables, page numbers on the small ones."""

from __future__ import annotations

import re

from rest_framework import exceptions, pagination

_ID = re.compile(r"[0-9]{1,18}")


class StaffCursorPagination(pagination.CursorPagination):
    """`?cursor=`, newest first (`-id`): no COUNT, stable under inserts."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            cursor = False
        # The position is an id here; anything else would reach the database as garbage.
        if cursor is False or (
            cursor is not None
            and cursor.position is not None
            and not _ID.fullmatch(cursor.position)
        ):
            raise exceptions.ValidationError({self.cursor_query_param: ["Invalid cursor."]})
        return cursor


class StaffPagePagination(pagination.PageNumberPagination):
    """`?page=` for the small tables (merchants, stores, stamp cards, partners)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
