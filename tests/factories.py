"""factory_boy factories. Objects are created through the services where value moves."""

import datetime as dt

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import Customer, Merchant, Store
from ledger.models import Stamp, StampCard
from loyalty.audit import Channel, audited


class AuditedFactory(factory.django.DjangoModelFactory):
    """Test fixtures are attributed like any other change (channel `command`)."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with audited(actor=None, channel=Channel.COMMAND, operation="test_fixture"):
            return super()._create(model_class, *args, **kwargs)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    is_staff = True
    password = factory.django.Password("pw-for-tests-only")


class MerchantFactory(AuditedFactory):
    class Meta:
        model = Merchant

    name = factory.Sequence(lambda n: f"Merchant {n}")


class StoreFactory(AuditedFactory):
    class Meta:
        model = Store

    merchant = factory.SubFactory(MerchantFactory)
    name = factory.Sequence(lambda n: f"Store {n}")


class CustomerFactory(AuditedFactory):
    class Meta:
        model = Customer

    merchant = factory.SubFactory(MerchantFactory)
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    member_id = factory.Sequence(lambda n: f"M-{n:05d}")
    wallet_address = factory.Sequence(lambda n: f"0x{n:040x}")
    name = factory.Faker("name")


class StampCardFactory(AuditedFactory):
    class Meta:
        model = StampCard

    merchant = factory.SubFactory(MerchantFactory)
    name = factory.Sequence(lambda n: f"Card {n}")
    max_stamps = 10


class StampFactory(AuditedFactory):
    class Meta:
        model = Stamp

    card = factory.SubFactory(StampCardFactory)
    merchant = factory.SelfAttribute("card.merchant")
    customer = factory.SubFactory(CustomerFactory, merchant=factory.SelfAttribute("..merchant"))
    max_stamps = factory.SelfAttribute("card.max_stamps")
    count = 0
    start_date = factory.LazyFunction(lambda: timezone.localdate() - dt.timedelta(days=1))
    end_date = factory.LazyFunction(lambda: timezone.localdate() + dt.timedelta(days=30))
