"""The three wire-compatible partner APIs, at the public APIs' own paths (see the README)."""

from django.urls import path

from partners.api import balance, points, stamp

urlpatterns = [
    path("api/stamp/v1/create", stamp.StampCreateView.as_view(), name="stamp-create"),
    path("api/stamp/v1/add", stamp.StampAddView.as_view(), name="stamp-add"),
    path("api/stamp/v1/remove", stamp.StampRemoveView.as_view(), name="stamp-remove"),
    path("api/stamp/v1/validate", stamp.StampValidateView.as_view(), name="stamp-validate"),
    path("api/stamp/v1/update", stamp.StampUpdateView.as_view(), name="stamp-update"),
    path("api/stamp/v1/delete", stamp.StampDeleteView.as_view(), name="stamp-delete"),
    path("api/balances/credit", balance.BalanceCreditView.as_view(), name="balance-credit"),
    path("api/balances/debit", balance.BalanceDebitView.as_view(), name="balance-debit"),
    path("api/balances/cancel", balance.BalanceCancelView.as_view(), name="balance-cancel"),
    path("get-points-by-address", points.GetPointsView.as_view(), name="points-get"),
    path("deduct-points-by-address", points.DeductPointsView.as_view(), name="points-deduct"),
    path("revert-deduct-points", points.RevertDeductView.as_view(), name="points-revert"),
    path("confirm-redemption", points.ConfirmRedemptionView.as_view(), name="points-confirm"),
]
