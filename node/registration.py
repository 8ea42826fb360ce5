"""Joining a coordinator and staying joined: challenge, signed registration, signed heartbeats.

Runs for the life of the daemon. Every call has a deadline; failures back off exponentially (capped)
and never stop the node from serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import grpc

from swarmrank.protos import limits, signing
from swarmrank.protos.model_info import model_info_to_pb
from swarmrank.protos.signing import Identity
from swarmrank.protos.v1 import coordinator_pb2 as cpb
from swarmrank.protos.v1 import coordinator_pb2_grpc

from .membership import Membership
from .service import Description

log = logging.getLogger("swarmrank.node.registration")

CALL_TIMEOUT = 10.0
# Registration includes the coordinator's calibration challenges: the default leaves a model time
# (the node setting ``register_timeout`` overrides it; slow machines raise it).
REGISTER_TIMEOUT = 600.0
MAX_BACKOFF = 30.0


async def register_once(
    stub: coordinator_pb2_grpc.CoordinatorAsyncStub, identity: Identity, address: str, description: Description,
    timeout: float = REGISTER_TIMEOUT,
) -> cpb.RegisterResponse:
    challenge = await stub.Challenge(cpb.ChallengeRequest(public_key=identity.public_key), timeout=CALL_TIMEOUT)
    signature = identity.sign(signing.registration_bytes(challenge.nonce, identity.public_key, address))
    return await stub.Register(
        cpb.RegisterRequest(
            public_key=identity.public_key,
            nonce=challenge.nonce,
            address=address,
            models=[model_info_to_pb(m) for m in description.models],
            max_concurrency=description.max_concurrency,
            signature=signature,
        ),
        timeout=timeout,
    )


async def stay_registered(
    coordinator: str,
    identity: Identity,
    address: str,
    description: Description,
    in_flight: Callable[[], int],
    stop: asyncio.Event,
    membership: Membership | None = None,
    register_timeout: float = REGISTER_TIMEOUT,
) -> None:
    """With a ``membership`` the channel is mTLS to the coordinator's node port, and the certificate
    is renewed (then the channel reopened with it) while heartbeats succeed."""
    while not stop.is_set():
        if not await _registered_session(coordinator, identity, address, description, in_flight, stop, membership,
                                         register_timeout):
            return


async def _registered_session(
    coordinator: str, identity: Identity, address: str, description: Description, in_flight: Callable[[], int],
    stop: asyncio.Event, membership: Membership | None, register_timeout: float,
) -> bool:
    """Register and heartbeat on one channel; True when a renewed certificate needs a new channel."""
    backoff = 1.0
    # Its own connection (not gRPC's process-wide subchannel pool): the coordinator rate-limits per
    # peer address, and several nodes in one process must not look like one peer.
    options = [*limits.GRPC_OPTIONS, ("grpc.use_local_subchannel_pool", 1)]
    channel = membership.coordinator_channel(coordinator, options) if membership else \
        grpc.aio.insecure_channel(coordinator, options=options)
    async with channel:
        stub = coordinator_pb2_grpc.CoordinatorStub(channel)
        while not stop.is_set():
            try:
                reply = await register_once(stub, identity, address, description, register_timeout)
                log.info("registered with %s as %s (reputation %.3f)", coordinator, reply.node_id, reply.reputation)
                backoff = 1.0
                interval = max(0.2, reply.heartbeat_interval_seconds)
                while not stop.is_set():
                    try:
                        await asyncio.wait_for(stop.wait(), timeout=interval)
                        return False
                    except TimeoutError:
                        pass
                    now = time.time()
                    hb = await stub.Heartbeat(
                        cpb.HeartbeatRequest(
                            node_id=identity.node_id,
                            timestamp_unix=now,
                            in_flight=in_flight(),
                            signature=identity.sign(signing.heartbeat_bytes(identity.node_id, now)),
                        ),
                        timeout=CALL_TIMEOUT,
                    )
                    if not hb.known:
                        log.warning("coordinator %s no longer knows this node; registering again", coordinator)
                        break
                    if membership is not None and membership.renew_due():  # healthy: a good time to renew
                        await membership.renew(channel, identity)
                        return True
            except grpc.aio.AioRpcError as exc:
                log.warning("coordinator %s: %s %s; retrying in %.0fs", coordinator, exc.code().name, exc.details(), backoff)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
                    return False
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, MAX_BACKOFF)
    return False
