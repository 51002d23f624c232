"""WSGI entry point (loyalty.wsgi:application, which `make serve` runs with granian)."""

import os

from django.core.wsgi import get_wsgi_application

from loyalty.request_body import RequestBodyMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")
# Bodies are read before Django runs and their unread rest before answering (see the module).
application = RequestBodyMiddleware(get_wsgi_application())
