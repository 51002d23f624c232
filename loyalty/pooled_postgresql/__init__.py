"""Django's PostgreSQL backend with psycopg's pool checked by loyalty.pool_check (the ENGINE
under DATABASE_POOL=1)."""
