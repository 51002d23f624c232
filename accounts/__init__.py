"""Who exists: merchants, stores, customers (memberships) and staff roles."""
