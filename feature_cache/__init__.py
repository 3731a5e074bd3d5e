"""The Redis client-feature cache: key layout, loader, reader and the `credit-scorer cache` commands."""
