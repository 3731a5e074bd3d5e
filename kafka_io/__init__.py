"""Kafka adapters shared by the worker, the API, replay and the tooling: client configuration, the
Java-compatible partitioner, the one batch sender and the record types."""
