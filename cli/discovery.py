"""Command line for a private libp2p swarm.

    swarmrank p2p bootstrap --swarm-key FILE [--p2p-listen MA]   run a bootstrap peer (prints its multiaddr)
    swarmrank ask "q" --bootstrap MA --swarm-key FILE            find a coordinator through the swarm
    swarmrank nodes --bootstrap MA --swarm-key FILE              list the node records the swarm announces
    swarmrank ledger watch --bootstrap MA --swarm-key FILE       follow coordinators' ledger heads, flag equivocation

``add_parser`` registers ``p2p`` and adds ``--bootstrap``/``--swarm-key`` to the existing ``ask``,
``nodes`` and ``ledger`` commands (one registration line in main.py). Without ``--bootstrap`` those
commands behave exactly as before.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from swarmrank.discovery import records
from swarmrank.discovery.config import open_discovery
from swarmrank.protos.signing import Identity

DEFAULT_WAIT = 15.0


def _swarm_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap", action="append", default=None, metavar="MULTIADDR",
                   help="join the private swarm through this peer (repeatable); needs --swarm-key")
    p.add_argument("--swarm-key", type=Path, default=None, help="the swarm's key file or swarm directory")
    p.add_argument("--p2p-listen", default="/ip4/127.0.0.1/tcp/0", help="libp2p listen multiaddr of this short-lived peer")
    p.add_argument("--discovery-wait", type=float, default=DEFAULT_WAIT,
                   help=f"seconds to wait for the swarm's announcements (default {DEFAULT_WAIT:.0f})")


async def _open(args: argparse.Namespace, identity: Identity | None = None) -> Any:
    from . import logs

    if not getattr(args, "log_level", None):
        logs.configure("WARNING", False)  # refusals and timeouts reach stderr; stdout stays the answer
    discovery = open_discovery(identity or Identity.generate(), bootstrap=args.bootstrap or [], key_path=args.swarm_key,
                               listen=args.p2p_listen)
    if discovery is None:
        raise ValueError("needs --bootstrap and --swarm-key")
    await discovery.start()
    return discovery


async def _find_coordinator(args: argparse.Namespace) -> str:
    discovery = await _open(args)
    try:
        deadline = time.monotonic() + args.discovery_wait
        while not discovery.coordinators():
            left = deadline - time.monotonic()
            if left <= 0:
                raise ValueError(f"no coordinator announced itself within {args.discovery_wait:.0f}s")
            await discovery.wait_changed(left)
        # The most advanced ledger first: the coordinator that has done the most work.
        best = max(discovery.coordinators(), key=lambda c: (c.head.seq, c.seq))
        print(f"found coordinator {best.coordinator_id} at {best.grpc_address}", file=sys.stderr)
        return str(best.grpc_address)
    finally:
        await discovery.close()


async def _collect_nodes(args: argparse.Namespace) -> list[records.NodeRecord]:
    """Listen until no new node has appeared for a few seconds (or the wait runs out)."""
    discovery = await _open(args)
    try:
        deadline = time.monotonic() + args.discovery_wait
        quiet = min(8.0, args.discovery_wait / 2)
        known: set[str] = set()
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            await discovery.wait_changed(min(1.0, max(0.0, deadline - time.monotonic())))
            ids = {n.node_id for n in discovery.nodes()}
            if ids - known:
                known |= ids
                last_new = time.monotonic()
            elif known and time.monotonic() - last_new >= quiet:
                break
        return sorted(discovery.nodes(), key=lambda n: n.node_id)
    finally:
        await discovery.close()


def _node_json(n: records.NodeRecord) -> dict[str, Any]:
    return {"node_id": n.node_id, "address": n.grpc_address, "role": n.role, "capacity": n.capacity,
            "models": [m.__dict__ for m in n.models], "seq": n.seq, "expires_unix": n.expires_unix,
            "p2p_addrs": list(n.p2p_addrs)}


def cmd_nodes_swarm(args: argparse.Namespace) -> int:
    nodes = asyncio.run(_collect_nodes(args))
    if args.json:
        print(json.dumps([_node_json(n) for n in nodes], indent=2))
        return 0
    if not nodes:
        print("the swarm announced no nodes")
    for n in nodes:
        models = ",".join(f"{m.name}({m.family} {m.parameters} {m.quantization})".replace("( ", "(") for m in n.models)
        print(f"{n.node_id}  {n.role:<8}  cap {n.capacity:<3}  {models:<40}  {n.grpc_address}")
    return 0


def _ledger_hashes(db: Path) -> tuple[bytes, dict[int, bytes]]:
    """(coordinator key named by genesis, seq -> entry hash) of a copied database."""
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        genesis = conn.execute("SELECT body FROM ledger WHERE seq=1").fetchone()
        key = bytes.fromhex(json.loads(genesis[0])["coordinator_key"]) if genesis else b""
        return key, {int(s): bytes(h) for s, h in conn.execute("SELECT seq, entry_hash FROM ledger")}
    finally:
        conn.close()


async def _watch(args: argparse.Namespace) -> int:
    from swarmrank.discovery.equivocation import audit

    discovery = await _open(args)
    shown: dict[str, int] = {}
    reported = 0
    end = time.monotonic() + args.duration if args.duration else None
    try:
        while end is None or time.monotonic() < end:
            await discovery.wait_changed(1.0 if end is None else max(0.05, min(1.0, end - time.monotonic())))
            for c in discovery.coordinators():
                if shown.get(c.coordinator_id) != c.head.seq:
                    shown[c.coordinator_id] = c.head.seq
                    _emit(args, {"event": "head", "coordinator": c.coordinator_id, "address": c.grpc_address,
                                 "ledger_seq": c.head.seq, "entry_hash": c.head.entry_hash.hex()},
                          f"coordinator {c.coordinator_id} at {c.grpc_address}: ledger entry {c.head.seq} "
                          f"{c.head.entry_hash.hex()[:16]}")
            for e in discovery.view.heads.evidence[reported:]:
                _emit(args, {"event": e.kind, "coordinator": e.coordinator_id, "ledger_seq": e.ledger_seq,
                             "first": e.first.decode(), "second": e.second.decode()}, "EQUIVOCATION: " + e.describe())
            reported = len(discovery.view.heads.evidence)
        if args.db is not None:
            key, hashes = _ledger_hashes(args.db)
            seen = [s.record for s in discovery.view.heads.seen_records() if s.record.public_key == key]
            findings = audit(hashes, seen)
            for f in findings:
                _emit(args, {"event": "audit_mismatch", "ledger_seq": f.ledger_seq, "problem": f.problem},
                      f"AUDIT entry {f.ledger_seq}: {f.problem}")
            if not findings:
                _emit(args, {"event": "audit_ok", "heads_checked": len(seen)},
                      f"audit ok: {len(seen)} head(s) the swarm saw match {args.db}")
            if findings:
                return 1
    finally:
        await discovery.close()
    return 1 if discovery.view.heads.evidence else 0


def _emit(args: argparse.Namespace, obj: dict[str, Any], text: str) -> None:
    print(json.dumps(obj) if args.json else text, flush=True)


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from . import logs

    logs.configure(args.log_level, False)

    async def run() -> None:
        identity = Identity.load_or_create(args.key_path) if args.key_path else Identity.generate()
        discovery = await _open(args, identity)
        for addr in discovery.addrs:
            print(f"swarmrank bootstrap listening on {addr}", flush=True)
        stop = asyncio.Event()
        import signal

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await discovery.close()

    asyncio.run(run())
    return 0


def _wrap(parser: argparse.ArgumentParser, swarm: Callable[[argparse.Namespace], int],
          when: Callable[[argparse.Namespace], bool] = lambda a: bool(a.bootstrap)) -> None:
    plain = parser.get_default("func")

    def run(args: argparse.Namespace) -> int:
        return swarm(args) if when(args) else int(plain(args))

    parser.set_defaults(func=run)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p2p = sub.add_parser("p2p", help="private libp2p swarm: run a bootstrap peer").add_subparsers(dest="action", required=True)
    boot = p2p.add_parser("bootstrap", help="run a bootstrap peer", description="A libp2p peer that only relays "
                          "gossip; prints 'swarmrank bootstrap listening on MULTIADDR' when ready.")
    _swarm_flags(boot)
    boot.add_argument("--key-path", type=Path, default=None, help="Ed25519 key (stable peer id); default: a fresh one")
    boot.add_argument("--log-level", default="INFO")
    boot.set_defaults(func=cmd_bootstrap)

    ask, nodes, ledger = sub.choices["ask"], sub.choices["nodes"], sub.choices["ledger"]
    for p in (ask, nodes, ledger):
        _swarm_flags(p)

    plain_ask = ask.get_default("func")

    def ask_swarm(args: argparse.Namespace) -> int:
        args.coordinator = asyncio.run(_find_coordinator(args))
        return int(plain_ask(args))

    _wrap(ask, ask_swarm)
    _wrap(nodes, cmd_nodes_swarm)
    for action in ledger._actions:
        if action.dest == "action" and isinstance(action.choices, list):
            action.choices.append("watch")
            action.help = (action.help or "") + "; watch: follow coordinators' ledger heads through the swarm (--bootstrap)"
    ledger.add_argument("--duration", type=float, default=0.0, help="watch: stop after this many seconds (0: until ^C)")
    for action in ledger._actions:
        if action.dest == "db":
            action.required = False
            action.default = None
    plain_ledger = ledger.get_default("func")

    def ledger_run(args: argparse.Namespace) -> int:
        if args.action == "watch":
            return asyncio.run(_watch(args))
        if args.db is None:
            raise ValueError("--db is required")
        return int(plain_ledger(args))

    ledger.set_defaults(func=ledger_run)
