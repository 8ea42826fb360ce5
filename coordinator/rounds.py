"""One consensus round, end to end: dispatch, generate, quorum, judge, aggregate, learn, answer.

Orchestration only: every rule is a pure module (ask_params, dispatch, judging_plan, verification,
failed_calls, spot_checks, consensus, reputation, ledger.round_summary), every network call goes
through ``NodeClient``, the Bradley-Terry fit and the durable writes run off the event loop, and
spot checks run under a ``Supervisor``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from swarmrank.protos import limits, signing

from . import ask_params, dispatch, evidence, failed_calls, judging_plan, ledger, reputation, spot_checks, verification
from . import consensus as consensus_mod
from .calibration import ChallengeBank, GenerationChallenge, PairwiseChallenge
from .domain import (
    AskParams, Candidate, CandidateArrived, Dispatched, Failure, Judgment, JudgingProgress, NodeRecord,
    RankedCandidate, RoundEvent, RoundResult, candidate_label,
)
from .errors import QuorumNotReached, UnknownRound
from .node_client import ComparisonOrder, GenerateOrder, NodeCallError, NodeClient
from .registry import Registry
from .settings import CoordinatorSettings
from .store import Store, round_to_json
from .supervisor import Supervisor

log = logging.getLogger("swarmrank.coordinator")

Emit = Callable[[RoundEvent], None]
INLINE_FIT_MAX = 8  # rounds with up to this many candidates fit on the event loop (see _fit)
SPOT_CHECK_TASK = "spot check"  # the name of each spot check's task (LocalSwarm.settle waits for them)


def _ignore(event: RoundEvent) -> None:
    pass


@dataclass
class _RoundState:
    round_id: str
    params: AskParams
    emit: Emit
    failures: list[Failure]
    penalties: list[tuple[str, str]]
    silent: list[str] = dataclasses.field(default_factory=list)  # generators that answered nothing

    def fail(self, node_id: str, stage: str, reason: str, penalty: str | None = None, level: int = logging.WARNING) -> None:
        failure = Failure(node_id, stage, reason)
        self.failures.append(failure)
        if penalty:
            self.penalties.append((node_id, penalty))
        log.log(level, "round=%s node=%s %s failed: %s", self.round_id, node_id, stage, reason)
        self.emit(failure)


class RoundRunner:
    def __init__(
        self,
        registry: Registry,
        store: Store,
        client: NodeClient,
        settings: CoordinatorSettings,
        rng: np.random.Generator | None = None,
        bank: ChallengeBank | None = None,
        on_stage: Callable[[str, float], None] | None = None,
    ) -> None:
        self._on_stage = on_stage  # metrics: (stage, seconds) for the stages no event marks (fit, commit)
        self._registry = registry
        self._store = store
        self._client = client
        self._settings = settings
        self._rng = rng or np.random.default_rng(settings.seed)
        self._bank = bank
        self._in_flight: Counter[str] = Counter()
        self._spot_checks = Supervisor("spot checks")
        self._spot_plan = spot_checks.Plan(bank.generation if bank else [], spot_checks.Schedule(
            settings.spot_check_rate, settings.probation_rate, settings.probation_checks))
        self._capacity_freed = asyncio.Event()  # set (and replaced) whenever a generator call ends
        self.counters: Counter[str] = Counter()  # rounds, failures by kind: exported in logs

    def validate(self, params: AskParams) -> AskParams:
        return ask_params.normalise(params, self._settings)

    def get(self, round_id: str) -> RoundResult:
        result = self._store.load_round(round_id) if 0 < len(round_id) <= limits.MAX_ID_CHARS else None
        if result is None:
            raise UnknownRound(f"no round with id {round_id[:80]!r}")
        return result

    async def run(self, params: AskParams, emit: Emit = _ignore, *,
                  spot_check: GenerationChallenge | None = None) -> RoundResult:
        """One round. With ``spot_check`` the round is a hidden calibration question: it runs exactly
        like a client's round, and its known answer becomes ground-truth evidence about every node
        that took part."""
        model = params.model  # a round restricted to the nodes serving this model (judges: any node)
        params = self.validate(params)
        started, created = time.perf_counter(), time.time()
        state = _RoundState(uuid.uuid4().hex, params, emit, [], [])
        quorum = self._settings.min_quorum
        available = self._registry.healthy()
        serving = [n for n in available if not model or any(m.name == model for m in n.models)]
        if len(serving) < quorum:
            raise QuorumNotReached(f"{len(serving)} healthy node(s){f' serving {model}' if model else ''}; "
                                   f"a round needs at least {quorum}")
        chosen = await self._dispatch(serving, params.k, explore=spot_check is not None)
        log.info("round=%s dispatched to %d node(s)", state.round_id, len(chosen))
        emit(Dispatched(state.round_id, tuple(n.node_id for n in chosen)))

        candidates = await self._generate(state, chosen)
        if len(candidates) < quorum:  # failed or empty answers: one more wave, to nodes not asked yet
            asked = {n.node_id for n in chosen}
            more = self._choose([n for n in serving if n.node_id not in asked], params.k - len(candidates),
                                explore=spot_check is not None)
            if more:
                log.info("round=%s %d answer(s) of %d: dispatched to %d more", state.round_id, len(candidates), len(chosen), len(more))
                emit(Dispatched(state.round_id, tuple(n.node_id for n in more)))
                candidates += await self._generate(state, more)
                chosen += more
        candidates = [dataclasses.replace(c, candidate_id=candidate_label(i)) for i, c in enumerate(candidates)]
        if len(candidates) < quorum:
            await self._learn(state, None, [], [], None)
            raise QuorumNotReached(
                f"round {state.round_id}: {len(candidates)} of {len(chosen)} candidate(s) arrived; need {quorum}"
            )
        failed = {f.node_id for f in state.failures}  # a failed call or an empty answer: no judging this round either
        known_pair = self._bank.pairwise_for(spot_check.question) if spot_check is not None and self._bank else None
        judges = [n for n in available if n.role.judges and n.node_id not in failed]
        judgments, planted = await self._judge(state, candidates, judges, known_pair)
        stage_started = time.perf_counter()
        verdict = await self._fit(candidates, judgments, params.prompt)
        stage_started = self._stage("fit", stage_started)
        result = self._result(state, candidates, judgments, verdict, started, created)
        # The round is saved in the same transaction as its ledger entries: answered means durable.
        await self._learn(state, verdict, judgments, candidates, spot_check, result, planted)
        self._stage("commit", stage_started)
        self.counters["spot_checks" if spot_check else "rounds"] += 1
        if spot_check is None:
            await self._maybe_spot_check()
        log.info(
            "round=%s answered by %s confidence=%.2f candidates=%d judgments=%d failures=%d seconds=%.2f",
            result.round_id, result.winner_node_id, result.confidence, len(candidates), len(judgments),
            len(state.failures), result.elapsed_seconds,
        )
        emit(result)
        return result

    async def _fit(self, candidates: Sequence[Candidate], judgments: Sequence[Judgment], prompt: str) -> consensus_mod.Consensus:
        """The round's consensus. A round's few answers fit in about a millisecond: on the event loop
        that is cheaper than the hop to a worker thread and back (several ms on a busy CPU); larger
        rounds fit off the loop."""
        if len(candidates) <= INLINE_FIT_MAX:
            return consensus_mod.rank_candidates(candidates, judgments, self._registry.trusts(),
                                                 prior=self._settings.prior, prompt=prompt)
        return await asyncio.to_thread(consensus_mod.rank_candidates, candidates, judgments, self._registry.trusts(),
                                       prior=self._settings.prior, prompt=prompt)

    async def _dispatch(self, available: Sequence[NodeRecord], k: int, *, explore: bool = False) -> list[NodeRecord]:
        """Generators for a round; when too few nodes have free capacity for a quorum, wait (up to
        ``capacity_wait``) for calls to finish instead of refusing: a burst queues, it does not fail."""
        deadline = time.monotonic() + self._settings.capacity_wait
        while True:
            chosen = self._choose(available, k, explore=explore)
            remaining = deadline - time.monotonic()
            if len(chosen) >= self._settings.min_quorum:
                return chosen
            if remaining <= 0:
                raise QuorumNotReached(f"only {len(chosen)} node(s) have free capacity; try again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._capacity_freed.wait(), min(remaining, 1.0))

    def _choose(self, nodes: Sequence[NodeRecord], k: int, *, explore: bool) -> list[NodeRecord]:
        return dispatch.choose_generators(nodes, k, self._rng, in_flight=self._in_flight, exploration=self._settings.exploration,
                                          explore=explore, probation_checks=self._settings.probation_checks)

    def _stage(self, name: str, since: float) -> float:
        now = time.perf_counter()
        if self._on_stage is not None:
            self._on_stage(name, now - since)
        return now

    def _call_failed(self, state: _RoundState, node_id: str, stage: str, exc: NodeCallError | TimeoutError) -> None:
        failure = failed_calls.classify(exc)
        if failure.no_show:
            self._registry.mark_failed(node_id)
        state.fail(node_id, stage, failure.reason, failure.penalty)
        self.counters[f"{stage}_{failure.code.lower()}"] += 1

    async def _generate(self, state: _RoundState, chosen: Sequence[NodeRecord]) -> list[Candidate]:
        params = state.params

        async def one(node: NodeRecord) -> Candidate | None:
            nonce = os.urandom(16)
            order = GenerateOrder(state.round_id, nonce, params.prompt, params.system, params.max_tokens,
                                  params.temperature, int(self._rng.integers(0, 2**31)))
            self._in_flight[node.node_id] += 1
            try:
                async with asyncio.timeout(self._settings.generate_timeout):
                    got = await self._client.generate(node.address, order, self._settings.generate_timeout)
            except (NodeCallError, TimeoutError) as exc:
                self._call_failed(state, node.node_id, "generate", exc)
                return None
            finally:
                self._in_flight[node.node_id] -= 1
                if self._in_flight[node.node_id] <= 0:  # keep only busy nodes: dispatch reads this per round
                    del self._in_flight[node.node_id]
                self._capacity_freed.set()  # wake the asks waiting for capacity, then re-arm
                self._capacity_freed = asyncio.Event()
            if not verification.candidate_is_signed(node.public_key, node.node_id, state.round_id, nonce, got):
                state.fail(node.node_id, "generate", "candidate signature does not verify for this node and round", "bad_signature")
                self.counters["bad_signature"] += 1
                return None
            if not got.text.strip():
                state.fail(node.node_id, "generate", "empty answer", level=logging.INFO)  # a model may have nothing to say
                state.silent.append(node.node_id)
                return None
            state.emit(CandidateArrived(node.node_id, got.model, got.completion_tokens))
            return Candidate("", node.node_id, got.model, got.text[: limits.MAX_ANSWER_CHARS], nonce, got.signature,
                             got.completion_tokens, got.elapsed_seconds)

        results = await asyncio.gather(*(one(n) for n in chosen))
        return [c for c in results if c is not None]  # labelled by the caller, once every wave is in

    async def _judge(self, state: _RoundState, candidates: Sequence[Candidate], judges: Sequence[NodeRecord],
                     known_pair: PairwiseChallenge | None = None) -> tuple[list[Judgment], list[Judgment]]:
        """Judge the round's candidates (with a spot check's ``known_pair`` planted among them).
        Returns the judgments of real candidates and, apart, those of the planted pair."""
        by_id = {n.node_id: n for n in judges}
        texts = [c.text.strip() for c in candidates]
        pairs = [(a, b) for a, b in judging_plan.schedule(len(candidates), self._rng) if texts[a] != texts[b]]
        tag = uuid.uuid4().hex[:8]
        weights = reputation.judge_weights(self._registry.trusts(), sorted(by_id), self._settings.top_judges,
                                           evidence.topic_of(state.params.prompt))
        planned, unassigned = judging_plan.assign(pairs, [frozenset({c.node_id}) for c in candidates], sorted(by_id),
                                                  self._rng, round_tag=tag, per_pair=self._settings.judges_per_pair,
                                                  weights=weights)
        if unassigned:
            log.warning("round=%s %d comparison(s) had no eligible judge", state.round_id, len(unassigned))
        planting = spot_checks.plant(candidates, sorted(by_id), known_pair)
        items = planting.items
        digests = [signing.sha256(item.text) for item in items]  # each answer is in several verdicts
        planned = judging_plan.anonymise(planned, self._rng, round_tag=tag, planted=planting.planted)
        calls = [(judge, batch) for judge, group in judging_plan.batches(planned, limits.MAX_COMPARISONS_PER_JUDGE_CALL).items()
                 for batch in group]
        total, done = len(planned), 0
        state.emit(JudgingProgress(0, total))
        judgments: list[Judgment] = []

        async def one(judge_id: str, batch: list[judging_plan.PlannedComparison]) -> None:
            nonlocal done
            node = by_id[judge_id]
            nonce = os.urandom(16)
            asked = {p.comparison_id: p for p in batch}
            orders = [ComparisonOrder(p.comparison_id, items[p.answer_a].text, items[p.answer_b].text,
                                      items[p.answer_a].nonce, items[p.answer_b].nonce) for p in batch]
            try:
                async with asyncio.timeout(self._settings.judge_timeout):
                    reply = await self._client.judge(node.address, state.round_id, nonce, state.params.prompt, orders,
                                                     self._settings.judge_timeout)
            except (NodeCallError, TimeoutError) as exc:
                self._call_failed(state, judge_id, "judge", exc)
                return
            checked = verification.check_verdicts(node.public_key, judge_id, state.round_id, nonce, reply,
                                                  {p.comparison_id: (digests[p.answer_a], digests[p.answer_b]) for p in batch})
            for rejected in checked.rejected:
                state.fail(judge_id, "judge", rejected.reason, rejected.penalty)
                self.counters[rejected.penalty] += 1
            weight = weights[judge_id]
            for a in checked.accepted:
                v, p = a.verdict, asked[a.verdict.comparison_id]
                assert v.preference is not None  # check_verdicts accepts known preferences only
                judgments.append(Judgment(judge_id, v.comparison_id, p.answer_a, p.answer_b, v.preference,
                                          float(v.confidence), v.rationale[:200], weight, nonce, reply.signature,
                                          a.proof, a.leaf_index, a.leaf_count))
            done += len(batch)
            state.emit(JudgingProgress(done, total))

        await asyncio.gather(*(one(j, b) for j, b in calls))
        judgments.sort(key=lambda j: j.comparison_id)
        return spot_checks.split(judgments, len(candidates))

    def _result(self, state: _RoundState, candidates: Sequence[Candidate], judgments: Sequence[Judgment],
                verdict: consensus_mod.Consensus, started: float, created: float) -> RoundResult:
        ranks = verdict.ranks or [verdict.ranking.index(i) + 1 for i in range(len(candidates))]
        ranked = tuple(
            RankedCandidate(candidates[i], float(verdict.strengths[i]), float(verdict.standard_errors[i]),
                            float(verdict.win_probability[i]), ranks[i])
            for i in verdict.ranking
        )
        winner = ranked[0].candidate
        return RoundResult(
            round_id=state.round_id, prompt=state.params.prompt, answer=winner.text, winner_node_id=winner.node_id,
            winner_candidate_id=winner.candidate_id, confidence=verdict.confidence, candidates=ranked,
            judgments=tuple(judgments), failures=tuple(state.failures),
            elapsed_seconds=time.perf_counter() - started, created_unix=created,
        )

    async def _learn(self, state: _RoundState, verdict: consensus_mod.Consensus | None, judgments: Sequence[Judgment],
                     candidates: Sequence[Candidate], spot_check: GenerationChallenge | None,
                     result: RoundResult | None = None, planted: Sequence[Judgment] = ()) -> None:
        ts = self._registry.clock()
        answer_of = {c.node_id: i for i, c in enumerate(candidates)}
        sole_roles = {node_id: record.sole_role for node_id, _ in state.penalties if (record := self._registry.get(node_id))}
        events = reputation.round_events(state.round_id, ts, verdict, judgments, answer_of, state.penalties, sole_roles)
        if spot_check is not None and candidates:
            # Judges are measured on the planted pair where there is one: every judge sees it, in both
            # orders, and it is the kind of pair a client round shows (the right answer against the
            # commonest wrong one). The real pairs of a spot check hold every node's answer and go to
            # a few judges by weight: odd pairs a client round rarely shows, measuring judges unevenly.
            disputed = consensus_mod.voters_disagree(candidates, self._registry.trusts(), spot_check.question)
            events += reputation.spot_check_events(state.round_id, ts, spot_checks.correctness(candidates, spot_check),
                                                   answer_of, list(planted) or judgments, evidence.topic_of(spot_check.question),
                                                   disputed, state.silent)
        transcript = round_to_json(result) if result is not None else ""
        summaries = [] if result is None else [{**ledger.round_summary(
            result, ts, spot_check=spot_check is not None, generators=[c.node_id for c in candidates],
            judgments=len(judgments), failures=len(state.failures)),
            # the transcript may be pruned later (retention); its hash stays in the chain
            "transcript_sha256": signing.sha256(transcript).hex()}]
        players = [c.node_id for c in candidates] + [j.judge_node_id for j in judgments]
        rounds = [(result, spot_check is not None, transcript)] if result is not None else []
        for node_id in await self._registry.record(events, players=players, summaries=summaries, rounds=rounds):
            node = self._registry.get(node_id)
            log.warning("node %s quarantined (reputation %.3f)", node_id, node.trust.score if node else 0.0)
            self.counters["quarantined"] += 1

    async def _maybe_spot_check(self) -> None:
        """Follow a round with the hidden calibration rounds ``spot_checks.Plan`` asks for (often
        none; ``probation_rate`` per round while some node's record is short), one series at a time. Each
        goes to as many nodes as a round may hold, short records first: that is where exploration
        happens."""
        if self._spot_checks.busy:
            return
        eligible = {n.node_id: spot_checks.measured(n) for n in self._registry.healthy()}
        challenges = self._spot_plan.after_round(eligible, self._rng)
        if not challenges:
            return

        async def series() -> None:
            for challenge in challenges:
                try:
                    await self.run(AskParams(prompt=challenge.question, k=self._settings.max_k), spot_check=challenge)
                except Exception as exc:  # noqa: BLE001 - a failed spot check must not fail the client's round
                    log.info("spot check did not complete: %s", exc)

        if not self._settings.spot_checks_in_order:
            await self._spot_checks.spawn(series(), SPOT_CHECK_TASK)
            return
        await series()  # its evidence lands before this round returns: with one round at a time, runs replay exactly

    async def close(self) -> None:
        await self._spot_checks.close()
