"""Every correction of the registry is an admin action and an object-page button of its
target's pages, offered only with its permission."""

import pytest
from django.contrib import admin

from ledger import corrections
from ledger.admin import corrections as admin_corrections

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("correction", corrections.CORRECTIONS, ids=lambda c: c.kind)
def test_each_correction_is_an_action_of_its_target_admin(rf, support, auditor, correction):
    model_admin = admin.site._registry[correction.target]
    offered = {c.name: c for c in model_admin.corrections}
    assert offered[correction.kind].registered is correction
    request = rf.get("/")
    request.user = support
    assert correction.kind in model_admin.get_actions(request)
    request.user = auditor
    assert correction.kind not in model_admin.get_actions(request)


def test_no_admin_correction_outside_the_registry():
    assert set(admin_corrections.ADMIN_CORRECTIONS) == set(corrections.BY_KIND)
    for model, model_admin in admin.site._registry.items():
        names = {c.name for c in getattr(model_admin, "corrections", ())}
        assert names == {c.kind for c in corrections.for_target(model)}
