from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = "Loyalty platform"

    def ready(self) -> None:
        from loyalty import audit

        audit.connect_signals()
