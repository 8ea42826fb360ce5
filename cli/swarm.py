"""Operating a private swarm from the command line.

    swarmrank swarm init DIR [--advertise NAMES]      CA, coordinator certificate, admin key, libp2p swarm key
    swarmrank swarm invite --swarm DIR [--ttl 1h] [--uses 1]   print a join token for a node
    swarmrank swarm revoke-token TOKEN_ID             refuse a token from now on
    swarmrank keys create NAME [--scope ask|admin] [--rate N/min] | list | revoke NAME
    swarmrank nodes remove NODE_ID                    revoke a node's certificate (admin)

Client commands (ask, nodes, round, keys, ...) take --swarm DIR (its CA, its coordinator address and,
for the operator, its admin key), --ca FILE, and --api-key or SWARMRANK_API_KEY.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from swarmrank.client.admin import AdminClient
from swarmrank.client.connection import API_KEY_ENV, api_key_or_env
from swarmrank.client.sdk import DEFAULT_ADDRESS

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    m = _DURATION.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 30m, 1h, 2d)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def rate(text: str) -> int:
    m = re.match(r"^(\d+)(?:/min)?$", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not a rate: {text!r} (e.g. 60/min)")
    return int(m.group(1))


def add_connection_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--swarm", type=Path, default=None, help="swarm directory: its CA, coordinator address and admin key")
    p.add_argument("--ca", type=Path, default=None, help="CA certificate (PEM) to verify the coordinator (TLS)")
    p.add_argument("--tls", action="store_true", help="TLS with the system's trusted CAs")
    p.add_argument("--api-key", default=None, help=f"API key (default: ${API_KEY_ENV}, or the swarm's admin key with --swarm)")


def connection(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """(address, keyword arguments for Client/AdminClient) from the connection flags."""
    from swarmrank.rpc import swarm_dir

    address = getattr(args, "coordinator", None)
    ca: Path | None = args.ca
    key = api_key_or_env(args.api_key)
    if args.swarm is not None:
        info = swarm_dir.load_info(args.swarm)
        address = address or info.coordinator_address
        ca = ca or info.ca_path
        key = key or info.admin_key()
    return address or DEFAULT_ADDRESS, {"api_key": key, "ca": ca, "tls": True if args.tls else None}


def cmd_init(args: argparse.Namespace) -> int:
    from swarmrank.rpc import swarm_dir

    advertise = [a.strip() for a in args.advertise.split(",") if a.strip()]
    info, _ = swarm_dir.init(args.directory, advertise)
    print(f"swarm {info.swarm_id} created in {info.directory}")
    print(f"  CA fingerprint (sha256): {info.ca_fingerprint}")
    print(f"  coordinator certificate for: {', '.join(advertise + ['localhost', '127.0.0.1'])}")
    print(f"  admin API key: {info.directory / 'admin.key'} (0600)   libp2p swarm key: {info.directory / 'swarm.key'} (0600)")
    print(f"next: swarmrank coordinator start --swarm {info.directory} --listen 0.0.0.0:50051")
    return 0


def cmd_invite(args: argparse.Namespace) -> int:
    address, options = connection(args)
    with AdminClient(address, **options) as admin:
        token = admin.create_join_token(args.ttl, args.uses)
    if args.json:
        print(json.dumps(token.__dict__))
        return 0
    print(token.token)
    print(f"join token {token.token_id}: {args.uses} use(s), expires {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(token.expires_unix))}."
          f"\non the node's host: swarmrank node start --join TOKEN --coordinator {address} --listen 0.0.0.0:50061 "
          "--advertise THIS-HOST:50061", file=sys.stderr)
    return 0


def cmd_revoke_token(args: argparse.Namespace) -> int:
    address, options = connection(args)
    with AdminClient(address, **options) as admin:
        admin.revoke_join_token(args.token_id)
    print(f"join token {args.token_id} revoked")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    address, options = connection(args)
    with AdminClient(address, **options) as admin:
        if args.action == "create":
            if not args.name:
                raise ValueError("keys create needs a NAME")
            key, info = admin.create_key(args.name, args.scope, args.rate)
            if args.json:
                print(json.dumps({"key": key, **info.__dict__}))
            else:
                print(key)
                print(f"API key {info.name!r} (scope {info.scope}, rate {info.rate_per_minute or 'unlimited'}/min): "
                      "shown once, only its hash is stored", file=sys.stderr)
        elif args.action == "revoke":
            if not args.name:
                raise ValueError("keys revoke needs a NAME")
            admin.revoke_key(args.name)
            print(f"API key {args.name!r} revoked")
        else:
            keys = admin.list_keys()
            if args.json:
                print(json.dumps([k.__dict__ for k in keys], indent=2))
            for k in [] if args.json else keys:
                print(f"{k.name:<20} {k.key_id}  {k.scope:<5}  rate {str(k.rate_per_minute or '-'):<6} "
                      f"{'REVOKED' if k.revoked else 'active'}")
    return 0


def cmd_nodes_remove(args: argparse.Namespace) -> int:
    if not args.node_id:
        raise ValueError("nodes remove needs a NODE_ID (see 'swarmrank nodes')")
    address, options = connection(args)
    with AdminClient(address, **options) as admin:
        revoked = admin.remove_node(args.node_id, "removed with swarmrank nodes remove")
    print(f"node {args.node_id} removed: {revoked} certificate(s) revoked; recorded in the ledger")
    return 0


def add_parser(sub: Any) -> None:
    swarm = sub.add_parser("swarm", help="create a private swarm and invite nodes").add_subparsers(dest="action", required=True)
    init = swarm.add_parser("init", help="create a swarm directory: CA, coordinator certificate, admin key, libp2p key")
    init.add_argument("directory", type=Path)
    init.add_argument("--advertise", default="", help="comma-separated names/addresses clients use to reach the coordinator")
    init.set_defaults(func=cmd_init)

    invite = swarm.add_parser("invite", help="print a join token for a node (admin)")
    invite.add_argument("--coordinator", default=None, help="coordinator address (default: from --swarm)")
    add_connection_flags(invite)
    invite.add_argument("--ttl", type=duration, default=3600.0, help="how long the token is valid (default 1h)")
    invite.add_argument("--uses", type=int, default=1, help="how many nodes may join with it (default 1)")
    invite.add_argument("--json", action="store_true")
    invite.set_defaults(func=cmd_invite)

    revoke = swarm.add_parser("revoke-token", help="revoke a join token by its id (printed by invite) (admin)")
    revoke.add_argument("token_id")
    revoke.add_argument("--coordinator", default=None, help="coordinator address (default: from --swarm)")
    add_connection_flags(revoke)
    revoke.set_defaults(func=cmd_revoke_token)

    keys = sub.add_parser("keys", help="client API keys (admin)")
    keys.add_argument("action", choices=["create", "list", "revoke"])
    keys.add_argument("name", nargs="?", default="")
    keys.add_argument("--scope", choices=["ask", "admin"], default="ask")
    keys.add_argument("--rate", type=rate, default=0, help="requests per minute, e.g. 60/min (default: unlimited)")
    keys.add_argument("--coordinator", default=None, help="coordinator address (default: from --swarm)")
    add_connection_flags(keys)
    keys.add_argument("--json", action="store_true")
    keys.set_defaults(func=cmd_keys)
