"""Ledger transparency: detect a coordinator that shows the swarm two histories (pure).

Every coordinator record carries its ledger head (sequence number, entry hash), signed with the
coordinator's key. A coordinator's ledger only grows, so for one coordinator:
- two records with the same ledger sequence number and different hashes are a fork
  (``equivocation``), and
- a newer record (higher record sequence number) whose ledger sequence number is lower than one it
  already announced is a rewrite (``rollback``).
Either way both signed records are kept as evidence anyone can re-verify with ``records.decode``.
An auditor holding a copy of the database checks it with ``audit``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .records import CoordinatorRecord, LedgerHead, Signed

HISTORY = 4096  # heads remembered per coordinator


@dataclass(frozen=True)
class Evidence:
    kind: Literal["equivocation", "rollback"]
    coordinator_id: str
    ledger_seq: int
    first: bytes  # the signed record seen earlier
    second: bytes  # the conflicting signed record

    def describe(self) -> str:
        if self.kind == "equivocation":
            return f"coordinator {self.coordinator_id} signed two different ledger heads for entry {self.ledger_seq}"
        return f"coordinator {self.coordinator_id} announced ledger entry {self.ledger_seq} after a later one (history rewritten)"


@dataclass
class _Seen:
    by_seq: OrderedDict[int, Signed] = field(default_factory=OrderedDict)
    highest: Signed | None = None


@dataclass
class HeadWatcher:
    """Feed it every verified coordinator record; it keeps the latest head per coordinator."""

    seen: dict[bytes, _Seen] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)

    def observe(self, signed: Signed) -> Evidence | None:
        record = signed.record
        if not isinstance(record, CoordinatorRecord):
            raise TypeError("only coordinator records carry ledger heads")
        state = self.seen.setdefault(record.public_key, _Seen())
        head = record.head
        found: Evidence | None = None
        earlier = state.by_seq.get(head.seq)
        if earlier is not None and _head_of(earlier).entry_hash != head.entry_hash:
            found = Evidence("equivocation", record.coordinator_id, head.seq, earlier.raw, signed.raw)
        elif state.highest is not None:
            top = _rec(state.highest)
            if record.seq > top.seq and head.seq < top.head.seq:
                found = Evidence("rollback", record.coordinator_id, head.seq, state.highest.raw, signed.raw)
        if found is not None:
            self.evidence.append(found)
            return found
        if earlier is None:
            state.by_seq[head.seq] = signed
            while len(state.by_seq) > HISTORY:
                state.by_seq.popitem(last=False)
        if state.highest is None or head.seq >= _rec(state.highest).head.seq:
            state.highest = signed
        return None

    def seen_records(self) -> list[Signed]:
        """Every distinct head remembered, for an audit of a copied database."""
        return [s for state in self.seen.values() for s in state.by_seq.values()]

    def heads(self) -> dict[str, CoordinatorRecord]:
        """The latest head seen from each coordinator."""
        return {_rec(s.highest).coordinator_id: _rec(s.highest) for s in self.seen.values() if s.highest is not None}


def _rec(signed: Signed) -> CoordinatorRecord:
    assert isinstance(signed.record, CoordinatorRecord)
    return signed.record


def _head_of(signed: Signed) -> LedgerHead:
    return _rec(signed).head


@dataclass(frozen=True)
class AuditFinding:
    ledger_seq: int
    problem: str


def audit(ledger_hashes: Mapping[int, bytes], heads: list[CoordinatorRecord]) -> list[AuditFinding]:
    """Compare a copied ledger (seq -> entry hash) with the heads the swarm saw from its coordinator."""
    findings = []
    for record in heads:
        h = ledger_hashes.get(record.head.seq)
        if h is None:
            findings.append(AuditFinding(record.head.seq, "the swarm saw this entry but the database does not have it"))
        elif h != record.head.entry_hash:
            findings.append(AuditFinding(record.head.seq, "the database's entry differs from the head the swarm saw"))
    return findings
