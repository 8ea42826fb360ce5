"""The node's exception tree. The servicer maps each kind to one gRPC status code."""


class NodeError(Exception):
    """Base of every error the node reports to a caller."""


class InvalidRequest(NodeError):
    """The request is malformed or out of range (INVALID_ARGUMENT)."""


class UnknownModel(NodeError):
    """The request names a model this node does not serve (NOT_FOUND)."""


class WrongRole(NodeError):
    """The node does not play this role: a judge-only node asked to generate, or the reverse (FAILED_PRECONDITION)."""


class Overloaded(NodeError):
    """The node's queue is full (RESOURCE_EXHAUSTED)."""


class BackendFailure(NodeError):
    """The model runtime failed (INTERNAL for the caller; details go to the log only)."""


class ModelUnavailable(NodeError):
    """A model cannot be prepared: missing package, bad checksum, unreachable upstream."""
