"""The swarmrank client SDK (sync and async) and the ``swarmrank`` command line.

    from swarmrank.client import Client
    with Client("127.0.0.1:50051") as swarm:
        answer = swarm.ask("What is the capital of France?")
        print(answer.text, answer.confidence)
"""

from .admin import AdminClient
from .sdk import AsyncClient, Client
from .types import (
    Answer, Candidate, CandidateReceived, Completed, DeadlineExceeded, Dispatched, Event, InvalidRequest,
    JudgingProgress, Judgment, NodeFailure, NodeInfo, NotFound, PermissionDenied, RateLimited, SwarmrankError,
    Unauthenticated, Unavailable,
)

__all__ = [
    "Answer", "AsyncClient", "Candidate", "CandidateReceived", "Client", "Completed", "DeadlineExceeded",
    "Dispatched", "Event", "InvalidRequest", "JudgingProgress", "Judgment", "NodeFailure", "NodeInfo", "NotFound",
    "PermissionDenied", "SwarmrankError", "Unavailable", "AdminClient", "RateLimited", "Unauthenticated",
]
