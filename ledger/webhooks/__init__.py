"""Webhooks: endpoints per merchant, signed deliveries by a background worker, the event bus."""
