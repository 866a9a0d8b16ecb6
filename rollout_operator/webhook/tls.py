"""The webhook's self-signed certificate, for clusters without cert-manager. Pure.

The API server calls the webhook over HTTPS and trusts the CA in the webhook
configuration's `caBundle`. The operator makes a small CA and a serving
certificate for the webhook Service's DNS names; both replicas share them through
one Secret, so the `caBundle` is the same whichever replica answers.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Keys of the Secret (the same names cert-manager writes, so one loader reads both).
CA_KEY, CERT_KEY, KEY_KEY = "ca.crt", "tls.crt", "tls.key"


CA_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, crl_sign=True,
    content_commitment=False, key_encipherment=False, data_encipherment=False,
    key_agreement=False, encipher_only=False, decipher_only=False,
)  # fmt: skip


@dataclass(frozen=True)
class CertBundle:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def as_secret_data(self) -> dict[str, bytes]:
        return {CA_KEY: self.ca_pem, CERT_KEY: self.cert_pem, KEY_KEY: self.key_pem}


def dns_names(service: str, namespace: str) -> list[str]:
    """The names the API server may use to reach a Service."""
    return [f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def generate(
    service: str, namespace: str, *, days: int = 3650, now: datetime.datetime | None = None
) -> CertBundle:
    """A CA and a serving certificate for `service.namespace.svc` signed by it."""
    now = now or datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llm-rollout webhook CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(CA_USAGE, critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = dns_names(service, namespace)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return CertBundle(ca.public_bytes(pem), cert.public_bytes(pem), _pem_key(key))


def valid_for(bundle: CertBundle, service: str, namespace: str, *, margin_days: int = 30) -> bool:
    """Whether a stored bundle still serves these names for at least `margin_days`."""
    try:
        cert = x509.load_pem_x509_certificate(bundle.cert_pem)
        x509.load_pem_x509_certificate(bundle.ca_pem)
        serialization.load_pem_private_key(bundle.key_pem, password=None)
    except ValueError:
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    if not set(dns_names(service, namespace)) <= set(san.get_values_for_type(x509.DNSName)):
        return False
    remaining = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return remaining > datetime.timedelta(days=margin_days)
