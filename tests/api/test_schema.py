"""The staff API's OpenAPI schema: valid, warning-free for our paths, and true to the
running API (schemathesis against the WSGI app with a real staff token)."""

from __future__ import annotations

import random

import pytest
import schemathesis
from django.core.management import call_command
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import token_for
from tests.approvals.world import approval_world
from tests.helpers import fuzz_examples
from tests.webhooks.conftest import webhook_world


def test_staff_api_schema_is_valid_and_has_no_warnings(db):
    """Generated from our URL patterns only: the partner APIs share the schema and their
    warnings are theirs (see the full-schema test below)."""
    GENERATOR_STATS._warn_cache.clear()
    GENERATOR_STATS._error_cache.clear()
    generator = SchemaGenerator(patterns=[path("api/v1/", include("ledger.api.urls"))])
    schema = generator.get_schema(request=None, public=True)
    validate_schema(schema)
    assert dict(GENERATOR_STATS._warn_cache) == {}
    assert dict(GENERATOR_STATS._error_cache) == {}
    paths = schema["paths"]
    assert "/api/v1/stamps/{id}/deduct/" in paths and "/api/v1/audit-log/" in paths
    assert "tokenAuth" in schema["components"]["securitySchemes"]
    deduct = paths["/api/v1/stamps/{id}/deduct/"]["post"]
    assert {"200", "400", "401", "403", "404", "409", "422"} <= deduct["responses"].keys()
    assert any(p["name"] == "Idempotency-Key" for p in deduct["parameters"])


def test_full_schema_validates_and_our_paths_raise_no_warning(db, capsys):
    # `manage.py spectacular --validate` over the whole project; --fail-on-warn is limited to
    # our own modules because the partner APIs (another team) are still settling theirs.
    call_command("spectacular", "--validate", "--file", "/dev/null")
    err = capsys.readouterr().err
    ours = [line for line in err.splitlines() if "ledger/api" in line or "Staff" in line]
    assert ours == []
    assert "Errors:   0" in err or "Errors:" not in err


@pytest.fixture
def staff_schema(db, world, support, settings, _keep_test_connection):
    settings.STAFF_API_THROTTLE_RATE = None  # the fuzzer is one fast user
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]  # schemathesis' WSGI host
    from loyalty.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    return schema.include(path_regex=r"^/api/v1/")


OBJECT_KEYS = {
    "merchants": "merchant",
    "stores": "store",
    "stamp-cards": "card",
    "customers": "customer",
    "stamps": "stamp",
    "balance-updates": "credit",
    "point-transactions": "deduction",
    "partners": "partner",
    "webhook-endpoints": "webhook_endpoint",
    "webhook-deliveries": "webhook_delivery",
    "approvals": "approval",
    "approval-policies": "approval_policy",
    "staff-limits": "staff_limit",
    "correction-batches": "correction_batch",
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def batch_world(world: dict, creator):
    """A previewed correction batch of the world's merchant (one row for its customer)."""
    from ledger import batches
    from loyalty.audit import Channel

    return batches.create_batch(
        actor=creator,
        channel=Channel.STAFF_API,
        merchant=world["merchant"],
        reason="schema fuzzing",
        rows=[{"kind": "adjust_points", "target": world["customer"].email, "amount": 1}],
    )


def test_staff_api_conforms_to_its_schema(staff_schema, world, support):
    """Every staff operation, positive and negative examples, with a real Support token.

    (schemathesis' own pytest plugin does not run under pytest 9 yet, so the operations
    are driven through its Python API and Hypothesis directly.)
    """
    headers = {"Authorization": f"Token {token_for(support)}"}
    # First: its preview runs the real services (webhook_world numbers its event by hand).
    world = {**world, **approval_world(world, support)}
    world = {**world, **webhook_world(world["merchant"], world["customer"])}
    world["correction_batch"] = batch_world(world, support)
    examples = fuzz_examples()
    chooser = random.Random(5)
    calls: list[int] = []
    failures: list[str] = []
    operations = [result.ok() for result in staff_schema.get_all_operations()]
    assert len(operations) >= 30

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            # Half the time aim at an object that exists, so the happy paths run too.
            if "id" in (case.path_parameters or {}) and chooser.random() < 0.5:
                resource = case.path.split("/")[3]
                case.path_parameters["id"] = world[OBJECT_KEYS[resource]].pk
            calls.append(1)
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # collect every operation's failure, not just the first
            failures.append(f"{operation.label}: {exc}")

    assert failures == [], "\n\n".join(failures)
    assert len(calls) >= min(examples, 10) * len(operations)
    print(f"schemathesis: {len(operations)} operations, {len(calls)} calls")
