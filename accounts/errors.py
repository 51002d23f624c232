"""Domain errors of merchants, stores and customers."""

from loyalty.errors import DomainError


class MerchantNotFound(DomainError):
    code = "merchant_not_found"
    message = "Merchant not found."


class StoreNotFound(DomainError):
    code = "store_not_found"
    message = "Store not found."


class CustomerNotFound(DomainError):
    code = "customer_not_found"
    message = "Customer not found."


class CustomerConflict(DomainError):
    code = "customer_conflict"
    message = "Another customer of this merchant has that email, member id or wallet address."


class AmbiguousCustomer(DomainError):
    code = "customer_ambiguous"
    message = "ambiguous: the email of one customer and the member id of another"
