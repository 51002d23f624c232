"""Django's PostgreSQL backend, whose pool pings a connection only when it sat idle.

Django builds psycopg's pool itself and passes `check=` from CONN_HEALTH_CHECKS (a round trip
on every checkout, or nothing); a `check` among the pool's OPTIONS collides with it. So
CONN_HEALTH_CHECKS is off under the pool and this wrapper gives the pool Django built the
idle check of loyalty.pool_check, before its first connection is handed out (and again if
Django rebuilds the pool, as it does when the time zone changes).
"""

from django.conf import settings
from django.db.backends.postgresql import base

from loyalty.pool_check import ping_when_idle


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        pool = super().pool
        if pool is not None and not hasattr(pool._check, "idle_seconds"):
            # psycopg_pool keeps its `check=` here (3.2, 3.3); tests/serving/test_pool_check.py
            # fails if that changes.
            pool._check = ping_when_idle(settings.DATABASE_POOL_CHECK_IDLE_SECONDS)
        return pool
