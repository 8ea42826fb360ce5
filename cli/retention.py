"""``swarmrank rounds prune|sizes``: bounded growth of a coordinator's database (offline or live)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def cmd_rounds(args: argparse.Namespace) -> int:
    from swarmrank.coordinator.store import Store
    from swarmrank.protos.signing import Identity

    if not args.db.is_file():
        raise FileNotFoundError(f"no database at {args.db}")
    # The store needs an identity only to write ledger entries; pruning writes none.
    store = Store(args.db, Identity.generate())
    try:
        out: dict[str, Any] = {"before": store.sizes()}
        if args.action == "prune":
            cutoff = time.time() - args.older_than_days * 86400
            out["pruned"] = store.prune_rounds(cutoff, args.archive)
            out["after"] = store.sizes()
    finally:
        store.close()
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        b = out["before"]
        print(f"{b['rounds']} round transcript(s), {b['ledger_entries']} ledger entries, {b['db_bytes']} bytes")
        if args.action == "prune":
            print(f"pruned {out['pruned']} transcript(s) older than {args.older_than_days} day(s)"
                  + (f", archived to {args.archive}" if args.archive else "") + f"; now {out['after']['db_bytes']} bytes")
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("rounds", help="round transcripts: sizes, or prune old ones (hashes stay in the ledger)")
    p.add_argument("action", choices=["sizes", "prune"])
    p.add_argument("--db", type=Path, required=True, help="the coordinator's SQLite database")
    p.add_argument("--older-than-days", type=float, default=30.0, help="prune: transcripts older than this (default 30)")
    p.add_argument("--archive", type=Path, default=None, help="prune: append pruned transcripts to this JSONL file first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rounds)
