"""Decentralised discovery: signed node/coordinator records gossiped over a private libp2p swarm.

The pure parts (``records``, ``equivocation``, ``swarm_key``, ``port``) import no libp2p; only
``libp2p_host`` and ``libp2p_discovery`` need the ``p2p`` extra.
"""
