"""The staff API's body parser: loyalty.http's JSON reader, insisting on an object."""

from __future__ import annotations

from loyalty.http.body import JSONBodyParser


class StaffJSONParser(JSONBodyParser):
    require_object = True
