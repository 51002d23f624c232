"""Staff API for four-eyes approvals: `approvals/` (list, approve, reject, cancel),
`approval-policies/` and `staff-limits/` (managed by superusers and holders of
`manage_approvalpolicy`; README: Approvals and staff limits).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone
from django_filters import rest_framework as django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.models import Merchant
from ledger import approvals
from ledger.api.fields import ContractIntegerField, TextField, reason_field
from ledger.api.filters import IdFilter
from ledger.api.schema import IDEMPOTENCY_KEY
from ledger.api.serializers import ApprovalEnvelopeSerializer, ApprovalSerializer
from ledger.api.views import CHANNEL, StaffViewSet
from ledger.models import Approval, ApprovalPolicy, StaffLimit
from ledger.models.approvals import LIMIT_KINDS, Kind
from loyalty.http.limits import MAX_AMOUNT, REASON_MAX
from loyalty.idempotency import idempotent

# --- approvals -----------------------------------------------------------------------------


class ApprovalFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Approval.Status.choices, method="by_status")
    kind = django_filters.ChoiceFilter(choices=Kind.choices)
    requested_by = django_filters.CharFilter(
        field_name="requested_by__username", max_length=150, help_text="A username."
    )
    merchant = IdFilter(field_name="merchant_id")

    class Meta:
        model = Approval
        fields = ["status", "kind", "requested_by", "merchant"]

    def by_status(self, queryset, name, value):
        # A pending request past its expiry reads `expired` before the worker records it.
        now = timezone.now()
        due = Q(status=Approval.Status.PENDING, expires_at__lte=now)
        if value == Approval.Status.PENDING:
            return queryset.filter(status=value, expires_at__gt=now)
        if value == Approval.Status.EXPIRED:
            return queryset.filter(Q(status=value) | due)
        return queryset.filter(status=value)


class DecisionInputSerializer(serializers.Serializer):
    reason = reason_field()


class CancelInputSerializer(serializers.Serializer):
    reason = TextField(required=False, allow_blank=True, max_length=REASON_MAX)


class ApprovalOutputSerializer(ApprovalSerializer):
    def to_representation(self, instance):
        return approvals.serialize(instance)


def _envelope(approval: Approval) -> Response:
    return Response({"approval": approvals.serialize(approval)})


@extend_schema_view(
    list=extend_schema(summary="List approval requests", responses=ApprovalOutputSerializer),
    retrieve=extend_schema(summary="One approval request", responses=ApprovalOutputSerializer),
)
class ApprovalViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    """Reading needs `view_approval` (Support, Supervisor, Auditor); approving and rejecting
    `approve_correction`, checked before anything else; cancel is the requester's."""

    queryset = Approval.objects.select_related("requested_by", "decided_by")
    serializer_class = ApprovalOutputSerializer
    filterset_class = ApprovalFilter
    action_permissions = {
        "approve": [approvals.APPROVE],
        "reject": [approvals.APPROVE],
    }

    def _decide(self, request, decide, input_class) -> Response:
        data = input_class(data=request.data)
        data.is_valid(raise_exception=True)
        approval = self.get_object()
        return _envelope(
            decide(approval, actor=request.user, channel=CHANNEL, **data.validated_data)
        )

    @extend_schema(
        summary="Approve: apply the correction now (or end `failed` with the refusal)",
        request=DecisionInputSerializer,
        responses=ApprovalEnvelopeSerializer,
        parameters=[IDEMPOTENCY_KEY],
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    @idempotent
    def approve(self, request, pk=None):
        return self._decide(request, approvals.approve, DecisionInputSerializer)

    @extend_schema(
        summary="Reject: the correction is never applied",
        request=DecisionInputSerializer,
        responses=ApprovalEnvelopeSerializer,
        parameters=[IDEMPOTENCY_KEY],
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    @idempotent
    def reject(self, request, pk=None):
        return self._decide(request, approvals.reject, DecisionInputSerializer)

    @extend_schema(
        summary="Cancel your own request",
        request=CancelInputSerializer,
        responses=ApprovalEnvelopeSerializer,
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def cancel(self, request, pk=None):
        return self._decide(request, approvals.cancel, CancelInputSerializer)


# --- policies and limits -------------------------------------------------------------------


def _limit_value(**kwargs):
    return ContractIntegerField(
        min_value=0, max_value=MAX_AMOUNT, required=False, allow_null=True, **kwargs
    )


class ApprovalPolicySerializer(serializers.ModelSerializer):
    merchant = serializers.IntegerField(source="merchant_id", read_only=True)

    class Meta:
        model = ApprovalPolicy
        fields = ["id", "merchant", "kind", "threshold", "created"]
        read_only_fields = fields


class ApprovalPolicyInputSerializer(serializers.Serializer):
    merchant = ContractIntegerField(min_value=1, max_value=2**63 - 1)
    kind = serializers.ChoiceField(choices=Kind.choices)
    threshold = ContractIntegerField(min_value=1, max_value=MAX_AMOUNT)
    reason = TextField(
        required=False, allow_blank=True, max_length=REASON_MAX, help_text="Why (history)."
    )

    def validate_merchant(self, value):
        merchant = Merchant.objects.filter(pk=value).first()
        if merchant is None:
            raise ValidationError("No such merchant.")
        return merchant


class StaffLimitSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = StaffLimit
        fields = ["id", "user", "kind", "max_amount", "daily_amount", "daily_count", "created"]
        read_only_fields = fields


class StaffLimitInputSerializer(serializers.Serializer):
    user = TextField(max_length=150, help_text="A staff user's username.")
    kind = serializers.ChoiceField(choices=LIMIT_KINDS)
    max_amount = _limit_value(help_text="Largest size applied without approval.")
    daily_amount = _limit_value(help_text="Sum of sizes per UTC day.")
    daily_count = _limit_value(help_text="Corrections per UTC day.")
    reason = TextField(
        required=False, allow_blank=True, max_length=REASON_MAX, help_text="Why (history)."
    )

    def validate_user(self, value):
        user = get_user_model().objects.filter(username=value, is_staff=True).first()
        if user is None:
            raise ValidationError("No such staff user.")
        return user


class SettingsViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, StaffViewSet
):
    """Reading: `view_<model>`; writing: `approvals.can_manage`."""

    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    input_class: type[serializers.Serializer]
    unique_together: tuple[str, str]

    def required_permissions(self) -> list[str]:
        if self.action in ("list", "retrieve", "history", None):
            return super().required_permissions()
        if approvals.can_manage(self.request.user, self.model):
            return []
        return [approvals.MANAGE_POLICY]

    def _unique(self, fields: dict, instance=None) -> None:
        first, second = self.unique_together
        clash = self.model.objects.filter(**{first: fields[first], second: fields[second]})
        if instance is not None:
            clash = clash.exclude(pk=instance.pk)
        if clash.exists():
            raise ValidationError({second: [f"One per {first} and {second}: this one exists."]})

    def create(self, request):
        data = self.input_class(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        reason = fields.pop("reason", "")
        self._unique(fields)
        instance = approvals.setting_save(
            self.model(), actor=request.user, channel=CHANNEL, reason=reason, **fields
        )
        return Response(self.get_serializer(instance).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        instance = self.get_object()
        data = self.input_class(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        reason = fields.pop("reason", "")
        first, second = self.unique_together
        if first in fields and getattr(instance, first) != fields[first]:
            raise ValidationError(
                {first: [f"A {self.model._meta.verbose_name} keeps its {first}."]}
            )
        if second in fields:
            self._unique({first: getattr(instance, first), second: fields[second]}, instance)
        instance = approvals.setting_save(
            instance, actor=request.user, channel=CHANNEL, reason=reason, **fields
        )
        return Response(self.get_serializer(instance).data)

    def destroy(self, request, pk=None):
        instance = self.get_object()
        reason = request.query_params.get("reason", "")
        approvals.setting_delete(instance, actor=request.user, channel=CHANNEL, reason=reason)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _settings_schema(noun: str, output, input_class):
    return extend_schema_view(
        list=extend_schema(summary=f"List {noun}"),
        retrieve=extend_schema(summary=f"One of the {noun}"),
        create=extend_schema(
            summary=f"Create one of the {noun} (managers)",
            request=input_class,
            responses={201: output},
        ),
        partial_update=extend_schema(
            summary=f"Change one of the {noun} (managers)",
            request=input_class(partial=True),
            responses=output,
        ),
        destroy=extend_schema(
            summary=f"Delete one of the {noun} (managers)", responses={204: None}
        ),
    )


class ApprovalPolicyFilter(django_filters.FilterSet):
    merchant = IdFilter(field_name="merchant_id")
    kind = django_filters.ChoiceFilter(choices=Kind.choices)

    class Meta:
        model = ApprovalPolicy
        fields = ["merchant", "kind"]


class StaffLimitFilter(django_filters.FilterSet):
    user = django_filters.CharFilter(field_name="user__username", max_length=150)
    kind = django_filters.ChoiceFilter(choices=LIMIT_KINDS)

    class Meta:
        model = StaffLimit
        fields = ["user", "kind"]


@_settings_schema("approval policies", ApprovalPolicySerializer, ApprovalPolicyInputSerializer)
class ApprovalPolicyViewSet(SettingsViewSet):
    queryset = ApprovalPolicy.objects.all()
    serializer_class = ApprovalPolicySerializer
    filterset_class = ApprovalPolicyFilter
    input_class = ApprovalPolicyInputSerializer
    unique_together = ("merchant", "kind")


@_settings_schema("staff limits", StaffLimitSerializer, StaffLimitInputSerializer)
class StaffLimitViewSet(SettingsViewSet):
    queryset = StaffLimit.objects.select_related("user")
    serializer_class = StaffLimitSerializer
    filterset_class = StaffLimitFilter
    input_class = StaffLimitInputSerializer
    unique_together = ("user", "kind")
