"""Errors of the REST API package. Each carries the HTTP status and a one-line detail for the client."""

from __future__ import annotations


class ApiError(Exception):
    """Base class: an error the API turns into an HTTP response ``{"detail": message}``."""

    status_code = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ClientNotFoundError(ApiError):
    """The client is not in the feature cache and the request carries no application field."""

    status_code = 404


class NotFoundError(ApiError):
    """Nothing stored (or cached) for the id asked."""

    status_code = 404


class UnscorableInputError(ApiError):
    """A valid-looking field the scorer cannot use (names the field)."""

    status_code = 422


class ServiceUnavailableError(ApiError):
    """A dependency is missing or down (model not loaded, Redis, feature version, broker)."""

    status_code = 503


class ModelNotLoadedError(ServiceUnavailableError):
    pass


class FeatureCacheUnavailableError(ServiceUnavailableError):
    pass


class BrokerUnavailableError(ServiceUnavailableError):
    pass


class StoreUnavailableError(ServiceUnavailableError):
    pass


class ReviewSubmitError(Exception):
    """``credit-scorer review submit`` could not have its verdict accepted (``code``: the exit code)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code
