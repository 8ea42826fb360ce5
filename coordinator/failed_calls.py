"""What a failed call to a node costs it (pure).

A node that accepted work and then did not answer in time, or could not be reached, is a no-show:
it loses its stake for the round and gets no more work until its next heartbeat. Any other failure
(it refused the request, sent garbage) only costs it the call.
"""

from __future__ import annotations

from dataclasses import dataclass

from .node_client import NodeCallError

NO_SHOW_CODES = frozenset({"DEADLINE_EXCEEDED", "UNAVAILABLE", "TIMEOUT"})


@dataclass(frozen=True)
class FailedCall:
    code: str    # the gRPC status name, or "TIMEOUT" for the coordinator's own deadline
    reason: str

    @property
    def no_show(self) -> bool:
        return self.code in NO_SHOW_CODES

    @property
    def penalty(self) -> str | None:
        """The key of ``reputation.PENALTY`` the failure earns, if any."""
        return "no_show" if self.no_show else None


def classify(exc: NodeCallError | TimeoutError) -> FailedCall:
    code = exc.code if isinstance(exc, NodeCallError) else "TIMEOUT"
    return FailedCall(code, str(exc) or code)
