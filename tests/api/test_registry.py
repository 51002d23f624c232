"""Every correction of the registry is a staff API action guarded by its permission, and
answers through the one generic implementation (preview and real run)."""

import pytest
from django.contrib.auth.models import Permission

from ledger import corrections
from ledger.api import urls, views
from tests import factories
from tests.api.conftest import StaffClient, ledger_snapshot, token_for

pytestmark = pytest.mark.django_db

TARGETS = {
    "deduct_stamp": "stamp",
    "cancel_balance_update": "credit",
    "revert_points": "deduction",
    "adjust_balance": "customer",
    "adjust_points": "customer",
}
KINDS = [c.kind for c in corrections.CORRECTIONS]


def _route(correction):
    """(URL prefix, action name) of the staff API route offering `correction`."""
    for prefix, viewset, _basename in urls.router.registry:
        for extra in viewset.get_extra_actions():
            if getattr(extra, "correction", None) is correction:
                assert viewset.queryset.model is correction.target
                return prefix, extra.url_path
    raise AssertionError(f"no staff API route for {correction.kind}")


def _body(correction):
    return {"reason": "registry check", **({"amount": 3} if correction.takes_amount else {})}


def test_the_tests_cover_the_registry():
    assert set(TARGETS) == set(KINDS) == set(views.CORRECTION_ENDPOINTS)


@pytest.mark.parametrize("kind", KINDS)
def test_each_correction_needs_exactly_its_own_permission(world, kind):
    correction = corrections.BY_KIND[kind]
    prefix, url_path = _route(correction)
    target = world[TARGETS[kind]]
    url = f"{prefix}/{target.pk}/{url_path}/"
    model = correction.target._meta
    view = Permission.objects.get(
        content_type__app_label=model.app_label, codename=f"view_{model.model_name}"
    )
    others = Permission.objects.filter(
        codename__in=[c.codename for c in corrections.CORRECTIONS if c is not correction]
    )
    user = factories.UserFactory(username=f"only-{kind}")
    user.user_permissions.set([view, *others])
    client = StaffClient(token_for(user))
    before = ledger_snapshot()
    assert client.post(url, _body(correction)).status_code == 403
    assert ledger_snapshot() == before
    app_label, codename = correction.permission.split(".")
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label=app_label, codename=codename)
    )
    preview = client.post(url, {**_body(correction), "preview": True})
    assert (preview.status_code, preview["Preview"]) == (200, "true")
    assert ledger_snapshot() == before
    applied = client.post(url, _body(correction))
    assert applied.status_code == 200
    history_model = correction.recorded_on
    assert history_model.history.order_by("-history_id").first().operation == correction.operation
