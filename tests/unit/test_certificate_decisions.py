"""When a deploy asks the ACME server for a certificate, and what it reads from the server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from onebox.facts import CertificateLineage
from onebox.tls_operations import issuance_reasons

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SERVER = "https://acme-v02.api.letsencrypt.org/directory"


def lineage(domains: list[str], days_left: int = 60, server: str = SERVER) -> dict:
    return {"domains": domains, "not_after": NOW + timedelta(days=days_left), "serial": "01", "server": server}


def test_a_valid_certificate_for_the_same_names_is_kept() -> None:
    assert issuance_reasons(lineage(["b.example.com", "a.example.com"]), ["a.example.com", "b.example.com"],
                            SERVER, NOW) == []


def test_missing_changed_expiring_or_foreign_certificates_are_replaced() -> None:
    assert issuance_reasons(None, ["a.example.com"], SERVER, NOW) == ["no certificate yet"]
    assert "not ['a.example.com', 'b.example.com']" in issuance_reasons(
        lineage(["a.example.com"]), ["a.example.com", "b.example.com"], SERVER, NOW)[0]
    assert issuance_reasons(lineage(["a.example.com"], days_left=10), ["a.example.com"], SERVER, NOW) == [
        "it expires within 30 days"]
    assert "came from https://staging" in issuance_reasons(
        lineage(["a.example.com"], server="https://staging"), ["a.example.com"], SERVER, NOW)[0]


def test_the_lineage_fact_parses_openssl_and_the_renewal_file() -> None:
    output = ["notAfter=Mar  5 10:00:00 2027 GMT", "serial=5301A1", "X509v3 Subject Alternative Name: ",
              "    DNS:a.example.com, DNS:b.example.com", "server=https://pebble:14000/dir"]
    fact = CertificateLineage().process(output)
    assert fact == {"domains": ["a.example.com", "b.example.com"], "serial": "5301A1",
                    "not_after": datetime(2027, 3, 5, 10, tzinfo=UTC), "server": "https://pebble:14000/dir"}
    assert CertificateLineage().process([]) is None
