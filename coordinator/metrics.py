"""The coordinator's Prometheus metrics, one ``CollectorRegistry`` per daemon (no global state: tests
run several coordinators in one process).

Counters and histograms move as rounds happen (``observed.ObservedRoundRunner``, the
``metered_client.MeteredNodeClient`` decorator, the HTTP API); gauges of swarm state (nodes by
status, reputations, failure counters the round runner keeps) are read at scrape time from the
registry, so they can never drift from it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .registry import Registry

# Seconds: a stage of a round on CPU models takes from milliseconds (replay) to minutes.
STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
COUNT_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32, 64)
RATE_BUCKETS = (1, 5, 10, 25, 50, 100, 200, 500, 1000, 5000)
# Keys of RoundRunner.counters that are penalties (the rest are plain failures).
PENALTY_KEYS = {"bad_signature": "bad_signature", "unasked_verdict": "unasked_verdict"}
NO_SHOW_SUFFIXES = ("_deadline_exceeded", "_unavailable", "_timeout")


class CoordinatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.rounds = Counter("swarmrank_rounds_total", "Rounds by kind (client, spot_check) and outcome",
                              ["kind", "outcome"], registry=r)
        self.rounds_in_progress = Gauge("swarmrank_rounds_in_progress", "Rounds running now (the coordinator's queue depth)",
                                        registry=r)
        self.rejections = Counter("swarmrank_round_rejections_total",
                                  "Asks refused before or during a round, by reason", ["reason"], registry=r)
        self.stage_seconds = Histogram("swarmrank_round_stage_seconds", "Time per stage of a round",
                                       ["stage"], buckets=STAGE_BUCKETS, registry=r)
        self.round_seconds = Histogram("swarmrank_round_seconds", "Time of a whole round", buckets=STAGE_BUCKETS, registry=r)
        self.candidates = Histogram("swarmrank_round_candidates", "Candidates that arrived per round", buckets=COUNT_BUCKETS,
                                    registry=r)
        self.judgments = Histogram("swarmrank_round_judgments", "Signed verdicts used per round", buckets=COUNT_BUCKETS,
                                   registry=r)
        self.judge_calls_per_round = Histogram("swarmrank_round_judge_calls", "Judge RPCs per round",
                                               buckets=COUNT_BUCKETS, registry=r)
        self.node_calls = Counter("swarmrank_node_calls_total", "Calls to nodes by RPC and result code",
                                  ["rpc", "code"], registry=r)
        self.node_call_seconds = Histogram("swarmrank_node_call_seconds", "Duration of calls to nodes", ["rpc"],
                                           buckets=STAGE_BUCKETS, registry=r)
        self.tokens = Counter("swarmrank_generated_tokens_total", "Completion tokens received, by model", ["model"],
                              registry=r)
        self.tokens_per_second = Histogram("swarmrank_generation_tokens_per_second",
                                           "Generation speed each node reported, by model", ["model"],
                                           buckets=RATE_BUCKETS, registry=r)
        self.auth_refusals = Counter("swarmrank_auth_refusals_total", "HTTP requests refused by authentication",
                                     ["reason"], registry=r)
        self.http_requests = Counter("swarmrank_http_requests_total", "HTTP API requests by route and status",
                                     ["route", "status"], registry=r)

    def watch(self, registry: Registry, counters: Mapping[str, int]) -> None:
        """Export swarm state read at scrape time: nodes by status, reputations, failure counters."""
        self.registry.register(_SwarmState(registry, counters))

    def stage(self, name: str, since: float) -> float:
        """Observe a stage that started at ``since`` (``time.perf_counter``); returns now, the next stage's start."""
        now = time.perf_counter()
        self.stage_seconds.labels(name).observe(now - since)
        return now


class _SwarmState(Collector):
    def __init__(self, registry: Registry, counters: Mapping[str, int]) -> None:
        self._registry = registry
        self._counters = counters

    def describe(self) -> list[Metric]:
        return []  # unchecked collector: its families depend on the swarm at scrape time

    def collect(self) -> Iterator[Metric]:
        nodes = self._registry.all()
        by_status = GaugeMetricFamily("swarmrank_nodes", "Known nodes by status", labels=["status"])
        counts: dict[str, int] = {s: 0 for s in ("healthy", "unhealthy", "gone", "probation", "quarantined", "refused")}
        for n in nodes:
            state = self._registry.state(n)
            counts[state] = counts.get(state, 0) + 1
        for status, count in sorted(counts.items()):
            by_status.add_metric([status], count)
        yield by_status
        rep = GaugeMetricFamily("swarmrank_node_reputation", "Reputation per node and role (judge: reliability)",
                                labels=["node_id", "model", "role"])
        for n in nodes:
            rep.add_metric([n.node_id, n.model_name, "generator"], n.trust.generator)
            rep.add_metric([n.node_id, n.model_name, "judge"], max(0.0, n.trust.judge_reliability))
            rep.add_metric([n.node_id, n.model_name, "overall"], n.reputation)
        yield rep
        failures = CounterMetricFamily("swarmrank_round_failures", "Failed node calls in rounds, by kind", labels=["kind"])
        penalties = CounterMetricFamily("swarmrank_penalties", "Penalties (stake lost) by kind", labels=["kind"])
        quarantines = CounterMetricFamily("swarmrank_quarantines", "Nodes quarantined since start")
        penalty_counts: dict[str, int] = {}
        counters = dict(self._counters)  # a copy: rounds update it while we read
        for key, value in sorted(counters.items()):
            if key in ("rounds", "spot_checks", "quarantined"):
                continue
            failures.add_metric([key], value)
            if key in PENALTY_KEYS:
                kind = PENALTY_KEYS[key]
            elif key.endswith(NO_SHOW_SUFFIXES):
                kind = "no_show"
            else:
                continue
            penalty_counts[kind] = penalty_counts.get(kind, 0) + value
        for kind, value in sorted(penalty_counts.items()):
            penalties.add_metric([kind], value)
        quarantines.add_metric([], counters.get("quarantined", 0))
        yield failures
        yield penalties
        yield quarantines
