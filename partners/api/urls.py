"""The three wire-compatible partner APIs (CONTRACT.md sections 1 to 3)."""

urlpatterns: list = []
