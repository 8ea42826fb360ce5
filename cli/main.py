"""The ``swarmrank`` command line.

    swarmrank demo ["question"]          local swarm of three real models answers a question
    swarmrank node start --model NAME    serve a model as a node (optionally joining a coordinator)
    swarmrank coordinator start          run a coordinator
    swarmrank ask "question"             ask a coordinator (pretty output, or --json)
    swarmrank nodes | round ID           inspect a swarm
    swarmrank ledger {verify,replay}     audit a coordinator's ledger
    swarmrank swarm {init,invite} | keys | nodes remove   operate a private swarm (TLS, tokens, API keys)
    swarmrank models [--prepare]         list / prepare the offline model catalogue
    swarmrank bench {node,kernels,replay,offline,live,overhead,load,scale}  benchmarks (JSON with --json)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import typing
from pathlib import Path
from typing import Any

from swarmrank.bench.parent_death import die_with_parent_if_asked
from swarmrank.client.sdk import DEFAULT_ADDRESS, Client
from swarmrank.client.types import SwarmrankError

from . import health
from .render import answer_summary, ask_and_print, print_answer


def _add_settings_flags(parser: argparse.ArgumentParser, settings_cls: Any) -> None:
    """One flag per settings field (``max_queue`` -> ``--max-queue``); unset flags fall back to env/TOML."""
    parser.add_argument("--config", type=Path, help="TOML file with settings (flags > env > file > defaults)")
    for name, field in settings_cls.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_text = (field.description or "") + f" (default: {field.get_default(call_default_factory=True)})"
        annotation = field.annotation
        if annotation is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif typing.get_origin(annotation) is list:
            parser.add_argument(flag, action="append", default=None, metavar=name.upper(), help=help_text + " (repeatable)")
        elif typing.get_origin(annotation) is typing.Literal:
            parser.add_argument(flag, choices=typing.get_args(annotation), default=None, help=help_text)
        else:
            parser.add_argument(flag, default=None, metavar=name.upper(), help=help_text)


def _settings_from(args: argparse.Namespace, settings_cls: Any) -> Any:
    from .config import load_settings

    overrides = {name: getattr(args, name) for name in settings_cls.model_fields}
    return load_settings(settings_cls, args.config, overrides)


def cmd_node_start(args: argparse.Namespace) -> int:
    from swarmrank.node.daemon import run
    from swarmrank.node.settings import NodeSettings

    from . import logs

    settings = _settings_from(args, NodeSettings)
    logs.configure(settings.log_level, settings.log_json)

    def ready(node_id: str, address: str) -> None:
        print(f"swarmrank node {node_id} listening on {address}", flush=True)

    run(settings, on_ready=ready)
    return 0


def cmd_coordinator_start(args: argparse.Namespace) -> int:
    from swarmrank.coordinator.daemon import serve
    from swarmrank.coordinator.settings import CoordinatorSettings

    from . import logs

    settings = _settings_from(args, CoordinatorSettings)
    logs.configure(settings.log_level, settings.log_json)
    asyncio.run(serve(settings, on_ready=lambda a: print(f"swarmrank coordinator listening on {a}", flush=True),
                      on_http_ready=lambda a: print(f"swarmrank coordinator HTTP API on http{'s' if settings.swarm else ''}://{a}",
                                                    flush=True)))
    return 0


def _client(args: argparse.Namespace, **kwargs: Any) -> Client:
    from .swarm import connection

    address, options = connection(args)
    return Client(address, **options, **kwargs)


def cmd_ask(args: argparse.Namespace) -> int:
    with _client(args, timeout=args.timeout) as client:
        ask_and_print(client, args.prompt, as_json=args.json, progress=not args.json, k=args.k,
                      max_tokens=args.max_tokens, temperature=args.temperature)
    return 0


def cmd_nodes(args: argparse.Namespace) -> int:
    if args.action == "remove":
        from .swarm import cmd_nodes_remove

        return cmd_nodes_remove(args)
    with _client(args) as client:
        nodes = client.nodes()
    if args.json:
        print(json.dumps([n.__dict__ for n in nodes], indent=2))
        return 0
    if not nodes:
        print("no nodes registered")
    for n in nodes:
        print(f"{n.node_id}  {n.state:<9}  {n.role:<8}  rep {n.reputation:.3f}  rounds {n.rounds:<4}  {','.join(n.models):<20}  {n.address}")
    return 0


def cmd_round(args: argparse.Namespace) -> int:
    with _client(args) as client:
        answer = client.round(args.round_id)
    if args.json:
        print(json.dumps(answer_summary(answer), indent=2))
    else:
        print_answer(answer)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from swarmrank.node import catalogue

    from swarmrank.bench.progress import ProgressBar

    for entry in catalogue.CATALOGUE.values():
        line = f"{entry.name:<20} {entry.family:<7} {entry.parameters:<5} {entry.quantization:<7} {'chat' if entry.chat else 'base'}  {entry.note}"
        if args.prepare:
            path = catalogue.prepare(entry.name, progress=ProgressBar(f"assembling {entry.name}", 1), verify=True)
            line += f"\n    ready: {path}"
        print(line)
    return 0


def cmd_ledger(args: argparse.Namespace) -> int:
    from swarmrank.coordinator import ledger

    if not args.db.is_file():
        raise FileNotFoundError(f"no database at {args.db}")
    if args.action == "verify":
        v = ledger.verify(args.db, bytes.fromhex(args.public_key) if args.public_key else None)
        if args.json:
            print(json.dumps(v.__dict__, indent=2))
        elif v.ok:
            print(f"ok: {v.entries} entries, chain and signatures valid (coordinator key {v.coordinator_key})")
        else:
            print(f"BAD at entry {v.first_bad_seq}: {v.reason}")
        return 0 if v.ok else 1
    report = ledger.replay_and_compare(args.db)
    if args.json:
        print(json.dumps({"nodes": {k: v.__dict__ for k, v in report.table.items()}, "mismatches": report.mismatches}, indent=2))
    else:
        for node_id, t in sorted(report.table.items()):
            print(f"{node_id}  {t.status:<11}  reputation {t.score:.4f} (generator {t.generator:.4f}, judge {t.judge:.4f})"
                  f"  ground truths passed {t.truths_passed}")
        print("replay matches the stored table" if not report.mismatches else f"MISMATCH for {', '.join(report.mismatches)}")
    return 0 if not report.mismatches else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.target == "node":
        from swarmrank.bench.node import main as bench_main
    elif args.target == "replay":
        from swarmrank.bench.replay import main as bench_main
    elif args.target == "live":
        from swarmrank.bench.live import main as bench_main
    elif args.target == "discovery":
        from swarmrank.bench.discovery import main as bench_main
    elif args.target == "overhead":
        from swarmrank.bench.tls_transport import main as bench_main  # overhead, and its --tls path
    elif args.target == "load":
        from swarmrank.bench.load import main as bench_main
    elif args.target == "scale":
        from swarmrank.bench.scale import main as bench_main
    elif args.target == "offline":
        from swarmrank.bench.offline import main as bench_main
    else:
        from swarmrank.bench.kernels import main as bench_main
    return bench_main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    from swarmrank.coordinator.settings import CoordinatorSettings
    from swarmrank.node.settings import NodeSettings

    from . import swarm

    parser = argparse.ArgumentParser(prog="swarmrank", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    swarm.add_parser(sub)

    node = sub.add_parser("node", help="run a node daemon").add_subparsers(dest="action", required=True)
    start = node.add_parser("start", help="serve a model over gRPC", description="Serve one model over gRPC. "
                            "Prints 'swarmrank node ID listening on ADDRESS' when ready; SIGTERM shuts down gracefully.")
    _add_settings_flags(start, NodeSettings)
    start.set_defaults(func=cmd_node_start)

    coord = sub.add_parser("coordinator", help="run a coordinator").add_subparsers(dest="action", required=True)
    cstart = coord.add_parser("start", help="serve the coordinator API", description="Run a coordinator. Prints "
                              "'swarmrank coordinator listening on ADDRESS' when ready.")
    _add_settings_flags(cstart, CoordinatorSettings)
    cstart.set_defaults(func=cmd_coordinator_start)

    def client_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--coordinator", default=None, help=f"coordinator address (default {DEFAULT_ADDRESS}, or the --swarm's)")
        p.add_argument("--json", action="store_true", help="print JSON for scripts")
        swarm.add_connection_flags(p)

    ask = sub.add_parser("ask", help="ask the swarm a question")
    ask.add_argument("prompt")
    client_flags(ask)
    ask.add_argument("--k", type=int, default=None, help="generators (default: the coordinator's)")
    ask.add_argument("--max-tokens", type=int, default=None)
    ask.add_argument("--temperature", type=float, default=None)
    ask.add_argument("--timeout", type=float, default=600.0, help="seconds before giving up (default 600)")
    ask.set_defaults(func=cmd_ask)

    nodes = sub.add_parser("nodes", help="list the swarm's nodes, or remove one (admin)")
    nodes.add_argument("action", nargs="?", choices=["list", "remove"], default="list")
    nodes.add_argument("node_id", nargs="?", default="")
    client_flags(nodes)
    nodes.set_defaults(func=cmd_nodes)

    rnd = sub.add_parser("round", help="show a past round (audit)")
    rnd.add_argument("round_id")
    client_flags(rnd)
    rnd.set_defaults(func=cmd_round)

    models = sub.add_parser("models", help="the offline model catalogue")
    models.add_argument("--prepare", action="store_true", help="assemble and verify every model now")
    models.set_defaults(func=cmd_models)

    led = sub.add_parser("ledger", help="audit a coordinator's ledger (offline, on its database file)")
    led.add_argument("action", choices=["verify", "replay"], help="verify: check the hash chain and signatures; "
                     "replay: rebuild the reputation table from the ledger and compare it with the stored one")
    led.add_argument("--db", type=Path, required=True, help="the coordinator's SQLite database")
    led.add_argument("--public-key", default="", help="pin the coordinator's public key (hex); default: the genesis entry's")
    led.add_argument("--json", action="store_true")
    led.set_defaults(func=cmd_ledger)

    demo = sub.add_parser("demo", help="a local swarm of real models answers a question",
                          description="Starts a coordinator and one node per model as separate processes on "
                                      "127.0.0.1, asks the question, prints the answer, ranking and judgments, "
                                      "and shuts everything down.")
    demo.add_argument("question", nargs="?", default="What is the capital of France?")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.add_argument("--models", default="smollm2-135m,qwen2.5-coder-0.5b,gemma3-270m", help="comma-separated catalogue names")
    demo.add_argument("--max-tokens", type=int, default=96)
    demo.add_argument("--timeout", type=float, default=600.0, help="seconds for the whole demo round (default 600)")
    demo.add_argument("--workdir", type=Path, default=None, help="keep keys, database and logs here (default: a temp dir)")
    demo.add_argument("--http-listen", default="127.0.0.1:0", help="the coordinator's OpenAI-compatible API and dashboard "
                      "(default 127.0.0.1:0, a free port; empty: off)")
    demo.add_argument("--serve", action="store_true", help="keep the swarm running after the answer (dashboard, API) "
                      "until Ctrl-C")
    demo.set_defaults(func=cmd_demo)

    from . import retention; retention.add_parser(sub)  # noqa: E702
    bench = sub.add_parser("bench", help="benchmarks: 'bench {node,kernels,replay,offline,live,overhead,load,scale,discovery} --help'")
    bench.add_argument("target", choices=["node", "kernels", "replay", "live", "overhead", "load", "scale", "discovery", "offline"])
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="options of the benchmark")
    bench.set_defaults(func=cmd_bench)
    health.add_parser(sub)
    from . import discovery as p2p_cli; p2p_cli.add_parser(sub)  # noqa: E702 -- p2p command, swarm flags on ask/nodes/ledger
    return parser


def main(argv: list[str] | None = None) -> int:
    die_with_parent_if_asked()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SwarmrankError as exc:
        print(f"error: {exc} [{exc.code}]", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, FileExistsError, PermissionError, ValueError, ConnectionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
