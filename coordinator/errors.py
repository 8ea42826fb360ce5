"""The coordinator's exception tree; ``servicer.STATUS_FOR_ERROR`` maps each to a gRPC status."""


class CoordinatorError(Exception):
    """Base of every error the coordinator reports to a caller."""


class InvalidAsk(CoordinatorError):
    """Malformed or out-of-range request (INVALID_ARGUMENT)."""


class UnknownRound(CoordinatorError):
    """No round with that id (NOT_FOUND)."""


class RegistrationRefused(CoordinatorError):
    """Bad proof of possession, expired challenge, or refused node (PERMISSION_DENIED)."""


class RateLimited(CoordinatorError):
    """Too many requests from one key or address (RESOURCE_EXHAUSTED)."""


class QuorumNotReached(CoordinatorError):
    """Too few nodes or candidates for a round (UNAVAILABLE: retry later)."""
