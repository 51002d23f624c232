"""Show a correction's effect before it is applied.

`dry_run(fn)` runs the real service inside a transaction that is then rolled back, so a
preview obeys exactly the rules, locks and constraints of the real call: the objects it
returns carry the values "after", and a refusal raises the same DomainError the real call
would. Nothing it wrote survives (history rows included).
"""

from collections.abc import Callable
from typing import TypeVar

from django.db import transaction

T = TypeVar("T")


def dry_run(fn: Callable[[], T]) -> T:
    with transaction.atomic():
        result = fn()
        transaction.set_rollback(True)
    return result
