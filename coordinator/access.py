"""Who may do what on a private swarm's coordinator: join tokens, API keys, node certificates.

State lives in the coordinator's SQLite file (tables of its own, its own connection, WAL) and in
memory for the per-call checks: tokens and keys are stored as SHA-256 of their secret; a revoked key
or certificate is refused on the next call. ``AccessControl.authorize`` is the policy the gRPC guard
(``rpc/guard.py``) runs before every call; ``authenticate_api_key`` is the same check for other
front ends (the HTTP API).
"""

from __future__ import annotations

import contextvars
import datetime
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from swarmrank.protos import signing
from swarmrank.rpc import credentials, pki
from swarmrank.rpc.guard import Refused
from swarmrank.rpc.swarm_dir import CoordinatorCredentials
from swarmrank.rpc.tls import PeerCert

log = logging.getLogger("swarmrank.coordinator.access")

SCHEMA = """
CREATE TABLE IF NOT EXISTS join_tokens (
    token_id TEXT PRIMARY KEY, secret_sha256 BLOB NOT NULL, created_unix REAL NOT NULL,
    expires_unix REAL NOT NULL, uses_left INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS api_keys (
    name TEXT PRIMARY KEY, key_id TEXT UNIQUE NOT NULL, secret_sha256 BLOB NOT NULL, scope TEXT NOT NULL,
    rate_per_minute INTEGER NOT NULL, created_unix REAL NOT NULL, revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS node_certificates (
    serial TEXT PRIMARY KEY, node_id TEXT NOT NULL, issued_unix REAL NOT NULL, expires_unix REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
"""

SCOPES = ("ask", "admin")
MAX_NAME_CHARS = 64
MAX_TOKEN_TTL = 30 * 86400.0
MAX_TOKEN_USES = 10_000

UNAUTH = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED


@dataclass(frozen=True)
class Principal:
    """A caller authenticated by an API key."""
    name: str
    key_id: str
    scope: str  # "ask" or "admin"


@dataclass(frozen=True)
class NodePrincipal:
    """A caller authenticated by a node certificate of this swarm."""
    node_id: str
    serial: int


@dataclass(frozen=True)
class KeyRecord:
    name: str
    key_id: str
    secret_sha256: bytes
    scope: str
    rate_per_minute: int
    created_unix: float
    revoked: bool


CALLER: contextvars.ContextVar[Principal | NodePrincipal | None] = contextvars.ContextVar("swarmrank_caller", default=None)

# What each method needs. Anything not listed needs an admin key (new RPCs are closed by default).
ASK_METHODS = {"/swarmrank.v1.Coordinator/" + m for m in ("Ask", "AskStream", "ListNodes", "GetRound")}
NODE_METHODS = {"/swarmrank.v1.Coordinator/" + m for m in ("Challenge", "Register", "Heartbeat")} | {"/swarmrank.v1.Access/Renew"}
OPEN_METHODS = {"/swarmrank.v1.Access/Join"}  # the join token in the request authenticates


class TokenBuckets:
    """Per-key rate limits: ``rate`` calls per minute, bursts up to ``rate``."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._state: dict[str, tuple[float, float]] = {}

    def take(self, key_id: str, rate_per_minute: int) -> float:
        """0 when the call may go; otherwise seconds until it could."""
        if rate_per_minute <= 0:
            return 0.0
        now = self._clock()
        tokens, last = self._state.get(key_id, (float(rate_per_minute), now))
        tokens = min(float(rate_per_minute), tokens + (now - last) * rate_per_minute / 60.0)
        if tokens < 1.0:
            self._state[key_id] = (tokens, now)
            return (1.0 - tokens) * 60.0 / rate_per_minute
        self._state[key_id] = (tokens - 1.0, now)
        return 0.0


class AccessControl:
    def __init__(self, db_path: Path, creds: CoordinatorCredentials, *, node_cert_lifetime: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.creds = creds
        self.swarm_id = creds.info.swarm_id
        self._lifetime = node_cert_lifetime
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(Path(db_path).expanduser()), check_same_thread=False, isolation_level=None, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        info = creds.info
        # The admin key made by `swarm init` (only its hash is in swarm.json); a revocation sticks.
        self._db.execute("INSERT OR IGNORE INTO api_keys VALUES (?,?,?,?,?,?,0)",
                         ("admin", info.admin_key_id, info.admin_key_hash, "admin", 0, clock()))
        self._keys = {r.key_id: r for r in self._load_keys()}
        self._revoked = {int(s) for (s,) in self._db.execute("SELECT serial FROM node_certificates WHERE revoked=1")}
        self._buckets = TokenBuckets(clock)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- the per-call policy ----------------------------------------------------------------------

    def authorize(self, method: str, peer: PeerCert | None, bearer: str | None) -> Principal | NodePrincipal | None:
        if method in OPEN_METHODS:
            return None
        if method in NODE_METHODS:
            caller: Principal | NodePrincipal | None = self._node(method, peer)
        else:
            caller = self.authenticate_api_key(bearer, "ask" if method in ASK_METHODS else "admin", method)
        CALLER.set(caller)
        return caller

    def _node(self, method: str, peer: PeerCert | None) -> NodePrincipal:
        if peer is None:
            raise Refused(UNAUTH, f"{method.rsplit('/', 1)[-1]} needs a node certificate of this swarm "
                                  "(join with 'swarmrank node start --join TOKEN'); connect to the coordinator's node port",
                          "node_cert_missing")
        role = peer.role(self.swarm_id)
        if role is None or role.kind != "node":
            raise Refused(DENIED, f"{method.rsplit('/', 1)[-1]} needs a node certificate; this certificate is not a node of "
                                  "this swarm", "wrong_role")
        if peer.serial in self._revoked:
            raise Refused(DENIED, f"the certificate of node {role.node_id} is revoked (node removed)", "cert_revoked")
        return NodePrincipal(role.node_id, peer.serial)

    def authenticate_api_key(self, token: str | None, scope: str = "ask", action: str = "this call") -> Principal:
        """The principal behind a bearer API key, or ``Refused`` (missing, malformed, unknown, revoked,
        under-scoped, over its rate). For every front end: gRPC guard, HTTP API."""
        if not token:
            raise Refused(UNAUTH, "an API key is required: send 'authorization: Bearer <key>' "
                                  "(--api-key or SWARMRANK_API_KEY)", "api_key_missing")
        try:
            key = credentials.parse_api_key(token)
        except credentials.MalformedCredential as exc:
            raise Refused(UNAUTH, str(exc), "api_key_malformed") from None
        record = self._keys.get(key.key_id)
        if record is None or not credentials.matches(key.secret, record.secret_sha256):
            raise Refused(UNAUTH, "unknown API key", "api_key_unknown")
        if record.revoked:
            raise Refused(UNAUTH, f"API key {record.name!r} is revoked", "api_key_revoked")
        if scope == "admin" and record.scope != "admin":
            raise Refused(DENIED, f"API key {record.name!r} has scope {record.scope!r}; {action.rsplit('/', 1)[-1]} needs admin",
                          "scope")
        wait = self._buckets.take(record.key_id, record.rate_per_minute)
        if wait > 0:
            raise Refused(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"API key {record.name!r} is over its rate of {record.rate_per_minute}/min; retry in {wait:.1f}s",
                          "rate_limited")
        return Principal(record.name, record.key_id, record.scope)

    # --- API keys ---------------------------------------------------------------------------------

    def _load_keys(self) -> list[KeyRecord]:
        rows = self._db.execute("SELECT name, key_id, secret_sha256, scope, rate_per_minute, created_unix, revoked FROM api_keys")
        return [KeyRecord(r[0], r[1], bytes(r[2]), r[3], int(r[4]), float(r[5]), bool(r[6])) for r in rows]

    def create_key(self, name: str, scope: str, rate_per_minute: int) -> tuple[str, KeyRecord]:
        if not name or len(name) > MAX_NAME_CHARS or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ValueError(f"a key name is 1..{MAX_NAME_CHARS} letters, digits, '-', '_' or '.'")
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
        if not 0 <= rate_per_minute <= 1_000_000:
            raise ValueError("rate must be 0 (unlimited) .. 1000000 per minute")
        key = credentials.new_api_key()
        record = KeyRecord(name, key.key_id, credentials.secret_hash(key.secret), scope, rate_per_minute, self._clock(), False)
        with self._lock:
            try:
                self._db.execute("INSERT INTO api_keys VALUES (?,?,?,?,?,?,0)", (name, record.key_id, record.secret_sha256,
                                                                                 scope, rate_per_minute, record.created_unix))
            except sqlite3.IntegrityError:
                raise ValueError(f"a key named {name!r} exists already (revoke it or pick another name)") from None
        self._keys[record.key_id] = record
        log.info("API key %r created (scope %s, rate %s/min)", name, scope, rate_per_minute or "unlimited")
        return str(key), record

    def list_keys(self) -> list[KeyRecord]:
        return sorted(self._keys.values(), key=lambda r: r.created_unix)

    def revoke_key(self, name: str) -> None:
        with self._lock:
            cur = self._db.execute("UPDATE api_keys SET revoked=1 WHERE name=?", (name,))
        if cur.rowcount == 0:
            raise LookupError(f"no API key named {name!r}")
        for key_id, r in list(self._keys.items()):
            if r.name == name:
                self._keys[key_id] = KeyRecord(r.name, r.key_id, r.secret_sha256, r.scope, r.rate_per_minute, r.created_unix, True)
        log.info("API key %r revoked", name)

    # --- join tokens ------------------------------------------------------------------------------

    def create_token(self, ttl_seconds: float, uses: int) -> tuple[credentials.JoinToken, float]:
        if not 0 < ttl_seconds <= MAX_TOKEN_TTL:
            raise ValueError(f"a token lives 0..{MAX_TOKEN_TTL / 86400:.0f} days")
        if not 1 <= uses <= MAX_TOKEN_USES:
            raise ValueError(f"a token has 1..{MAX_TOKEN_USES} uses")
        token = credentials.new_join_token(self.creds.info.ca_fingerprint)
        now = self._clock()
        with self._lock:
            self._db.execute("INSERT INTO join_tokens VALUES (?,?,?,?,?,0)",
                             (token.token_id, credentials.secret_hash(token.secret), now, now + ttl_seconds, uses))
        log.info("join token %s created (%d use(s), expires in %.0fs)", token.token_id, uses, ttl_seconds)
        return token, now + ttl_seconds

    def revoke_token(self, token_id: str) -> None:
        with self._lock:
            cur = self._db.execute("UPDATE join_tokens SET revoked=1 WHERE token_id=?", (token_id,))
        if cur.rowcount == 0:
            raise LookupError(f"no join token {token_id!r}")

    def _use_token(self, text: str) -> str:
        try:
            token = credentials.parse_join_token(text)
        except credentials.MalformedCredential as exc:
            raise Refused(UNAUTH, str(exc), "token_malformed") from None
        if token.ca_fingerprint != self.creds.info.ca_fingerprint:
            raise Refused(UNAUTH, "the join token is for another swarm (its CA fingerprint differs)", "token_other_swarm")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT secret_sha256, expires_unix, uses_left, revoked FROM join_tokens WHERE token_id=?",
                                       (token.token_id,)).fetchone()
                problem = ("unknown join token", "token_unknown") if row is None or not credentials.matches(token.secret, bytes(row[0])) \
                    else ("the join token is revoked", "token_revoked") if row[3] \
                    else ("the join token has expired", "token_expired") if row[1] < self._clock() \
                    else ("the join token has been used already", "token_used") if row[2] <= 0 else None
                if problem is None:
                    self._db.execute("UPDATE join_tokens SET uses_left=uses_left-1 WHERE token_id=?", (token.token_id,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if problem is not None:
            raise Refused(UNAUTH, problem[0], problem[1])
        return token.token_id

    # --- node certificates ------------------------------------------------------------------------

    def join(self, token: str, public_key: bytes, csr: bytes, signature: bytes) -> tuple[bytes, float]:
        """Spend a use of ``token`` on a node certificate for the Ed25519 identity ``public_key``."""
        node_id = self._identity(public_key)
        try:
            parsed_id = credentials.parse_join_token(token).token_id
        except credentials.MalformedCredential as exc:
            raise Refused(UNAUTH, str(exc), "token_malformed") from None
        if not signing.verify(public_key, signature, signing.join_bytes(parsed_id, csr)):
            raise Refused(UNAUTH, "the certificate request is not signed by the node key it names", "join_signature")
        self._use_token(token)
        return self._issue(node_id, csr)

    def renew(self, public_key: bytes, csr: bytes, signature: bytes) -> tuple[bytes, float]:
        caller = CALLER.get()
        node_id = self._identity(public_key)
        if not isinstance(caller, NodePrincipal) or caller.node_id != node_id:
            raise Refused(DENIED, "a node renews only its own certificate", "renew_other")
        if not signing.verify(public_key, signature, signing.join_bytes("renew", csr)):
            raise Refused(UNAUTH, "the certificate request is not signed by the node key it names", "join_signature")
        return self._issue(node_id, csr)

    @staticmethod
    def _identity(public_key: bytes) -> str:
        try:
            return signing.node_id_for(public_key)
        except ValueError as exc:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, str(exc), "bad_public_key") from None

    def _issue(self, node_id: str, csr: bytes) -> tuple[bytes, float]:
        c = self.creds
        try:
            cert = pki.issue_node_cert(c.ca_key, c.ca_cert, self.swarm_id, node_id, csr, datetime.timedelta(seconds=self._lifetime))
        except pki.PkiError as exc:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, str(exc), "bad_csr") from None
        expires = cert.not_valid_after_utc.timestamp()
        with self._lock:
            self._db.execute("INSERT INTO node_certificates VALUES (?,?,?,?,0)", (str(cert.serial_number), node_id, self._clock(), expires))
        log.info("issued a certificate to node %s (serial %x, expires in %.0fs)", node_id, cert.serial_number, expires - self._clock())
        return pki.cert_pem(cert) + c.ca_pem, expires

    def revoke_node(self, node_id: str) -> int:
        with self._lock:
            serials = [int(s) for (s,) in self._db.execute(
                "SELECT serial FROM node_certificates WHERE node_id=? AND revoked=0", (node_id,))]
            self._db.execute("UPDATE node_certificates SET revoked=1 WHERE node_id=?", (node_id,))
        self._revoked.update(serials)
        return len(serials)


def check_node_identity(node_id: str) -> str | None:
    """What is wrong with a node-authenticated request about ``node_id`` (None: nothing, or no TLS)."""
    caller = CALLER.get()
    if isinstance(caller, NodePrincipal) and caller.node_id != node_id:
        return f"this certificate belongs to node {caller.node_id}, not {node_id}"
    return None
