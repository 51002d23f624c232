"""Who calls from outside: partners, their credentials, and the wire-compatible APIs."""
