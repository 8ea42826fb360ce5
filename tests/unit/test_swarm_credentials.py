"""Pure pieces of a private swarm: certificates and roles, secret formats, rate limits, files."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest

from swarmrank.coordinator.access import TokenBuckets
from swarmrank.rpc import credentials, pki, swarm_dir
from swarmrank.rpc.guard import bearer_of
from swarmrank.rpc.tls import InsecureRefused, check_plaintext, is_loopback


def test_node_certificate_names_only_what_the_ca_decides() -> None:
    ca_key, ca_cert = pki.create_ca("s1")
    key = pki.new_key()
    cert = pki.issue_node_cert(ca_key, ca_cert, "s1", "ab" * 16, pki.make_csr(key), datetime.timedelta(hours=1))
    assert pki.roles_of(cert) == [pki.Role("s1", "node", "ab" * 16)]
    assert cert.issuer == ca_cert.subject and cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert 0.85 < pki.remaining_fraction(cert) <= 1.0
    ckey, ccert = pki.issue_coordinator_cert(ca_key, ca_cert, "s1", ["coord.example.org", "10.0.0.5"])
    assert pki.roles_of(ccert) == [pki.Role("s1", "coordinator", "")]
    with pytest.raises(pki.PkiError, match="malformed"):
        pki.issue_node_cert(ca_key, ca_cert, "s1", "x", b"junk", datetime.timedelta(hours=1))
    with pytest.raises(pki.PkiError, match="larger"):
        pki.issue_node_cert(ca_key, ca_cert, "s1", "x", b"\0" * 5000, datetime.timedelta(hours=1))


@pytest.mark.parametrize("uri,role", [
    ("swarmrank://s/coordinator", pki.Role("s", "coordinator", "")),
    ("swarmrank://s/node/n1", pki.Role("s", "node", "n1")),
    ("swarmrank://s/node/", None), ("swarmrank:///coordinator", None), ("https://s/coordinator", None),
    ("swarmrank://s/admin", None), ("swarmrank://s/node/n1/extra", None),
])
def test_role_uris(uri: str, role: pki.Role | None) -> None:
    assert pki.parse_role(uri) == role


def test_secret_formats_round_trip_and_never_print_the_secret() -> None:
    token = credentials.new_join_token("a" * 64)
    assert credentials.parse_join_token(str(token)) == token and token.secret not in repr(token)
    key = credentials.new_api_key()
    assert credentials.parse_api_key(str(key)) == key and key.secret not in repr(key)
    assert credentials.matches(key.secret, credentials.secret_hash(key.secret))
    assert not credentials.matches(key.secret + "0", credentials.secret_hash(key.secret))
    for bad in ("", "SRJ1." + "a" * 64, "srk_x_y", str(key)[:-1]):
        with pytest.raises(credentials.MalformedCredential):
            credentials.parse_api_key(bad) if bad.startswith("srk") or not bad else credentials.parse_join_token(bad)


def test_token_bucket_allows_its_rate_then_refuses_then_refills() -> None:
    now = [0.0]
    buckets = TokenBuckets(lambda: now[0])
    assert [buckets.take("k", 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = buckets.take("k", 3)
    assert wait == pytest.approx(20.0)  # one call per 20 s at 3/min
    now[0] += 20.0
    assert buckets.take("k", 3) == 0.0
    assert buckets.take("other", 3) == 0.0  # keys are independent
    assert all(buckets.take("free", 0) == 0.0 for _ in range(100))  # 0 = unlimited


def test_bearer_parsing() -> None:
    assert bearer_of([("authorization", "Bearer abc")]) == "abc"
    assert bearer_of([("authorization", "bearer  abc ")]) == "abc"
    assert bearer_of([("authorization", "Basic abc")]) == ""
    assert bearer_of([("x", "y")]) is None and bearer_of(None) is None


def test_plaintext_only_on_loopback() -> None:
    assert is_loopback("127.0.0.1:1") and is_loopback("[::1]:1") and is_loopback("localhost:1")
    assert not is_loopback("0.0.0.0:1") and not is_loopback("10.0.0.5:1") and not is_loopback("example.org:1")
    check_plaintext("127.0.0.1:50051", False, "coordinator")
    with pytest.raises(InsecureRefused, match="--insecure"):
        check_plaintext("0.0.0.0:50051", False, "coordinator")
    check_plaintext("0.0.0.0:50051", True, "coordinator")


def test_swarm_directory_files_and_modes(tmp_path: Path) -> None:
    info, admin = swarm_dir.init(tmp_path / "s", ["coord.example.org"])
    for name in ("ca.key", "coordinator.key", "admin.key", "swarm.key"):
        assert (info.directory / name).stat().st_mode & 0o777 == 0o600
    assert info.admin_key() == admin and info.coordinator_address == "coord.example.org:50051"
    lines = (info.directory / "swarm.key").read_bytes().split(b"\n")
    assert lines[:2] == [b"/key/swarm/psk/1.0.0/", b"/base16/"] and len(bytes.fromhex(lines[2].decode())) == 32
    creds = swarm_dir.load_coordinator(info.directory)
    assert pki.fingerprint(creds.ca_cert) == info.ca_fingerprint
    with pytest.raises(FileExistsError):
        swarm_dir.init(info.directory, [])
    os.chmod(info.directory / "ca.key", 0o644)
    with pytest.raises(PermissionError, match="readable by others"):
        swarm_dir.load_coordinator(info.directory)
