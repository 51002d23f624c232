"""The HTTP problem layer shared by the staff API and the three partner API families.

Plumbing only (it imports no app): `limits` (the numbers every surface checks), `body` (one
reader of JSON request bodies), `fields` (the strict DRF fields), `problems` (one classifier
from any exception to a neutral problem). Each family keeps only its envelope renderer and
its kind-to-status table.
"""
