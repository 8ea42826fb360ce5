"""Admission: proof of possession, cool-downs, calibration, and the ledger entries they produce.

A node that proves it holds its key is calibrated before it may take part: it answers generation
challenges and judges pairwise challenges (both orders) through its normal Generate and Judge
RPCs, indistinguishable from a real round. Passing admits it on probation; failing refuses it with
the score and a cool-down per key and per address. A known, eligible node that registers again
(restart, new address) keeps its standing without re-calibration; a quarantined one must wait out
the cool-down and pass calibration again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from swarmrank.protos import signing
from swarmrank.protos.types import ModelInfo, Preference

from . import reputation, verification
from .admission import Challenges
from .calibration import ChallengeBank, GenerationChallenge, PairwiseChallenge, is_correct
from .domain import NodeRecord
from .errors import RegistrationRefused
from .node_client import ComparisonOrder, GenerateOrder, NodeCallError, NodeClient
from .registry import Registry
from .settings import CoordinatorSettings
from .trust import Trust

log = logging.getLogger("swarmrank.coordinator.joining")
MAX_COOLDOWNS = 100_000


@dataclass(frozen=True)
class Application:
    public_key: bytes
    nonce: bytes
    address: str
    models: tuple[ModelInfo, ...]
    max_concurrency: int
    signature: bytes
    peer: str


@dataclass(frozen=True)
class CalibrationResult:
    score: float
    generation_correct: int
    generation_total: int
    pairs_correct: int
    pairs_total: int

    def summary(self) -> str:
        return (f"{self.generation_correct}/{self.generation_total} generation challenges, "
                f"{self.pairs_correct}/{self.pairs_total} pairwise challenges (both orders) correct: score {self.score:.2f}")


class Gatekeeper:
    def __init__(self, registry: Registry, client: NodeClient, bank: ChallengeBank, settings: CoordinatorSettings,
                 rng: np.random.Generator, challenges: Challenges | None = None) -> None:
        self._registry = registry
        self._client = client
        self._bank = bank
        self._settings = settings
        # Each node's challenges come from its own stream (this base and its id), not from a shared
        # one that concurrent admissions would consume in a different order each run.
        self._base = int(rng.integers(0, 2**62))
        self.challenges = challenges or Challenges(registry.clock)
        self._cooldown: OrderedDict[str, float] = OrderedDict()

    def _check_cooldown(self, *keys: str) -> None:
        now = self._registry.clock()
        for key in keys:
            until = self._cooldown.get(key, 0.0)
            if until > now:
                raise RegistrationRefused(f"refused recently; try again in {until - now:.0f}s")

    def _cool(self, *keys: str) -> None:
        until = self._registry.clock() + self._settings.refusal_cooldown
        for key in keys:
            self._cooldown[key] = until
            self._cooldown.move_to_end(key)
        while len(self._cooldown) > MAX_COOLDOWNS:
            self._cooldown.popitem(last=False)

    async def register(self, app: Application) -> NodeRecord:
        node_id = self.challenges.verify(app.public_key, app.nonce, app.address, app.signature)
        host = app.peer.rsplit(":", 1)[0]
        known = self._registry.get(node_id)
        if known is not None and known.trust.eligible:
            return self._registry.relocate(node_id, app.address, app.models, app.max_concurrency)
        self._check_cooldown("key:" + node_id, "host:" + host)
        now = self._registry.clock()
        if known is not None and known.trust.status == "quarantined":
            wait = known.trust.updated_unix + self._settings.refusal_cooldown - now
            if wait > 0:
                raise RegistrationRefused(f"node is quarantined; re-calibration possible in {wait:.0f}s")
        candidate = NodeRecord(node_id, app.public_key, app.address, app.models, max(1, min(app.max_concurrency, 256)),
                               now, now, Trust(0.0, 0.0, "refused", now, 0))
        result = await self.calibrate(candidate)
        passed = result.score >= self._settings.calibration_threshold
        events = [reputation.Event("admit" if passed else "refuse", node_id, now, "calibration", result.score)]
        if passed:  # the calibration result is the first ground truth about each role
            if result.generation_total:
                events.append(reputation.Event("evidence", node_id, now, "calibration",
                                               result.generation_correct / result.generation_total, "", "generator"))
            if result.pairs_total:
                events.append(reputation.Event("evidence", node_id, now, "calibration",
                                               result.pairs_correct / result.pairs_total, "", "judge"))
        await self._registry.record(events, new_nodes=[] if known else [candidate])
        if known:
            self._registry.relocate(node_id, app.address, app.models, app.max_concurrency)
        if not passed:
            self._cool("key:" + node_id, "host:" + host)
            log.warning("refused node %s: %s", node_id, result.summary())
            raise RegistrationRefused(
                f"calibration failed: {result.summary()}, threshold {self._settings.calibration_threshold:.2f}; "
                f"try again in {self._settings.refusal_cooldown:.0f}s"
            )
        log.info("admitted node %s on probation: %s", node_id, result.summary())
        node = self._registry.get(node_id)
        assert node is not None
        return node

    async def calibrate(self, node: NodeRecord) -> CalibrationResult:
        # Each role is calibrated only if the node plays it: a reward model is never asked to write.
        rng = np.random.default_rng([self._base, int.from_bytes(hashlib.sha256(node.node_id.encode()).digest()[:8], "big")])
        generation, pairwise = self._bank.sample(rng, self._settings.calibration_generation if node.role.generates else 0,
                                                 self._settings.calibration_pairwise if node.role.judges else 0)
        seeds = [int(x) for x in rng.integers(0, 2**31, size=len(generation))]
        gen_ok = sum(await asyncio.gather(*(self._generation(node, c, seed) for c, seed in zip(generation, seeds))))
        pairs_ok = await self._pairwise(node, pairwise)
        total = len(generation) + len(pairwise)
        return CalibrationResult((gen_ok + pairs_ok) / total if total else 1.0, gen_ok, len(generation), pairs_ok, len(pairwise))

    async def _generation(self, node: NodeRecord, challenge: GenerationChallenge, seed: int) -> bool:
        round_id, nonce = uuid.uuid4().hex, os.urandom(16)
        order = GenerateOrder(round_id, nonce, challenge.question, self._settings.system_prompt,
                              self._settings.default_max_tokens, 0.0, seed)
        try:
            got = await self._client.generate(node.address, order, self._settings.calibration_timeout)
        except NodeCallError as exc:
            log.info("calibration of %s: generate failed: %s", node.node_id, exc)
            return False
        return (verification.candidate_is_signed(node.public_key, node.node_id, round_id, nonce, got)
                and is_correct(got.text, challenge))

    async def _pairwise(self, node: NodeRecord, challenges: Sequence[PairwiseChallenge]) -> int:
        """Pairs judged right in both orders. Each challenge is its own Judge call, like a real round's batch."""
        async def one(c: PairwiseChallenge) -> bool:
            round_id, nonce = uuid.uuid4().hex, os.urandom(16)
            orders = [ComparisonOrder("q0", c.better, c.worse), ComparisonOrder("q1", c.worse, c.better)]
            try:
                reply = await self._client.judge(node.address, round_id, nonce, c.question, orders, self._settings.calibration_timeout)
            except NodeCallError as exc:
                log.info("calibration of %s: judge failed: %s", node.node_id, exc)
                return False
            checked = verification.check_verdicts(node.public_key, node.node_id, round_id, nonce, reply,
                                                  {o.comparison_id: (signing.sha256(o.answer_a), signing.sha256(o.answer_b))
                                                   for o in orders})
            want = {"q0": Preference.A, "q1": Preference.B}
            return not checked.rejected and sorted(want.items()) == sorted(
                (a.verdict.comparison_id, a.verdict.preference) for a in checked.accepted)

        return sum(await asyncio.gather(*(one(c) for c in challenges)))
