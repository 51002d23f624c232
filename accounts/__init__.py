"""Who exists: merchants, stores, customers (memberships)."""
