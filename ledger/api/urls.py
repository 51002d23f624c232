"""Staff REST API (/api/v1/): filled in by the staff API work (issue 5)."""

urlpatterns: list = []
