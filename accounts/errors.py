"""Domain errors of merchants, stores and customers."""

from loyalty.errors import DomainError, NotFound


class MerchantNotFound(NotFound):
    code = "merchant_not_found"
    message = "Merchant not found."


class StoreNotFound(NotFound):
    code = "store_not_found"
    message = "Store not found."


class StoreOfAnotherMerchant(DomainError):
    code = "invalid_store"
    kind = "invalid"
    message = "The store does not belong to the merchant."


class CustomerNotFound(NotFound):
    code = "customer_not_found"
    message = "Customer not found."


class CustomerConflict(DomainError):
    code = "customer_conflict"
    kind = "conflict"
    message = "Another customer of this merchant has that email, member id or wallet address."


class AmbiguousCustomer(DomainError):
    code = "customer_ambiguous"
    kind = "invalid"
    message = "ambiguous: the email of one customer and the member id of another"
