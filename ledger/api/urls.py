"""Staff REST API (/api/v1/): resource viewsets, history, audit log (README: Staff API)."""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from ledger.api import approvals, batches, events, views, webhooks
from ledger.api.errors import not_found

router = SimpleRouter()
router.register("merchants", views.MerchantViewSet, basename="staff-merchant")
router.register("stores", views.StoreViewSet, basename="staff-store")
router.register("stamp-cards", views.StampCardViewSet, basename="staff-stampcard")
router.register("customers", views.CustomerViewSet, basename="staff-customer")
router.register("stamps", views.StampViewSet, basename="staff-stamp")
router.register("balance-updates", views.BalanceUpdateViewSet, basename="staff-balanceupdate")
router.register(
    "point-transactions", views.PointTransactionViewSet, basename="staff-pointtransaction"
)
router.register("partners", views.PartnerViewSet, basename="staff-partner")
router.register(
    "webhook-endpoints", webhooks.WebhookEndpointViewSet, basename="staff-webhookendpoint"
)
router.register(
    "webhook-deliveries", webhooks.WebhookDeliveryViewSet, basename="staff-webhookdelivery"
)
router.register("approvals", approvals.ApprovalViewSet, basename="staff-approval")
router.register(
    "approval-policies", approvals.ApprovalPolicyViewSet, basename="staff-approvalpolicy"
)
router.register("staff-limits", approvals.StaffLimitViewSet, basename="staff-stafflimit")
router.register(
    "correction-batches", batches.CorrectionBatchViewSet, basename="staff-correctionbatch"
)

urlpatterns = [
    *router.urls,
    path("audit-log/", views.AuditLogView.as_view(), name="staff-audit-log"),
    path("events/", events.EventFeedView.as_view(), name="staff-events"),
    # Anything else under /api/v1/: a 404 in this API's error shape, not Django's HTML page.
    re_path(r"^.*$", not_found),
]
