"""Hostile and broken input through the real upload views, as Alice (manager of Acme).

Every file of the cryptography-vectors package's x509/, pkcs12/, pkcs7/ and asymmetric/
folders (installed by the dev extra, never copied into this repository), and mutations of
valid files made at run time, go through the real views in every role: as the certificate,
as the key and as the chain of an SSL upload, as an Apple Pay .p12, as the certificate Apple
returns for a CSR made here, and as the Apple Pay identity proof. For each upload:

* no server error: the test client re-raises whatever a view raises, and nothing catches it;
* a refusal is a form error on the field of the file that caused it (or on the passphrase,
  or, for a certificate that cannot be read, on the expiry date it then asks for), or the
  413 page for a body over the request cap; never an "unexpected problem" from the parser;
* nothing is stored on refusal, and an acceptance stores exactly one certificate;
* the request costs at most UPLOAD_CPU_SECONDS_MAX of CPU time in this process (the test
  client runs the view here), not wall-clock time, which a busy shared machine stretches.

Failures are collected per file and role and asserted together, so that one run names them
all. The upload times (CPU and wall clock) are printed (pytest -s) for the record.

The expensive inputs (last section) are files whose uploader chose what reading them costs:
key derivations, key sizes, keys hidden in encrypted PKCS#12 content, costly candidate
issuers. Each must be refused on its field within EXPENSIVE_CPU_SECONDS_MAX of CPU, its time
printed.
"""

import base64
import os
import random
import shlex
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import cryptography_vectors
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import RequestFactory
from django.urls import reverse

from certificates import services
from certificates.bundle import (
    EXPLICIT_CURVE_MESSAGE,
    KEY_UNSUPPORTED_MESSAGE,
    KEY_UNUSABLE_TYPE_MESSAGE,
    MAX_FILE_BYTES,
    NO_CHAIN_CERTIFICATE_MESSAGE,
    NOT_A_KEY_MESSAGE,
    TOO_LARGE_MESSAGE,
    UNEXPECTED_FAILURE_MESSAGE,
    UNREADABLE_MESSAGE,
)
from certificates.models import Certificate, CertificateRequest
from certificates.views import UPLOAD_DRAFT_SESSION_KEY
from certmgr import demo_pki
from certmgr.upload_limits import RequestBodyLimitMiddleware
from core import encryption
from tests.certificates import expensive_inputs as expensive
from tests.support import errors_of, require_program, upload

pytestmark = pytest.mark.django_db

CORPUS_ROOT = Path(cryptography_vectors.__file__).parent
CORPUS_FOLDERS = ("x509", "pkcs12", "pkcs7", "asymmetric")
# The password of every protected PKCS#12 file in cryptography-vectors.
CORPUS_PKCS12_PASSWORD = "cryptography"
CORPUS_ROLES = ("certificate", "key", "chain", "p12", "request complete")
# The CPU time one upload may cost, measured with time.process_time() around the test
# client's request: the view runs in this process, so that is the parsing and checking the
# server would do, and it does not grow when other programs compete for the machine's cores
# (wall-clock time does). The slowest uploads here cost under 0.2 s; a parser that goes
# quadratic on a hostile file costs seconds to minutes. process_time() counts every thread
# of the process, and no other thread of this process works during these requests.
UPLOAD_CPU_SECONDS_MAX = 2.0
MERCHANT = "merchant.test.hostile"
TOO_LARGE_PAGE_TITLE = "Upload too large"

SSL_URL = reverse("certificate_upload_ssl")
APPLE_URL = reverse("certificate_upload_merchant_identity")
PROOF_URL = reverse("certificate_upload_identity_proof")


# --------------------------------------------------------------------------- the roles


@dataclass(frozen=True)
class Role:
    """One way of uploading a file: the view, the fields sent, where a refusal may point."""

    name: str
    url: str
    # A refusal may name these fields: the file's own, the passphrase (the file is
    # encrypted), the expiry date (an SSL certificate that cannot be read asks for it).
    fields: frozenset[str]
    post_data: Callable[[bytes, str], dict]


@dataclass(frozen=True)
class RoleUrls:
    """Where each role uploads: the pages' views, or the API's (tests/api)."""

    ssl: str
    apple: str
    request_complete: str
    proof: str


def page_urls(request: CertificateRequest) -> RoleUrls:
    return RoleUrls(
        ssl=SSL_URL,
        apple=APPLE_URL,
        request_complete=reverse("certificate_request_complete", args=[request.pk]),
        proof=PROOF_URL,
    )


def roles_make(valid: demo_pki.Issued, urls: RoleUrls, *, base: dict | None = None) -> list[Role]:
    """The six roles, around a valid certificate and key for the other fields, and a
    pending CSR for Apple's answer (in `urls`); `base`: the fields every upload sends."""
    base = {"name": "hostile", **(base or {})}
    expiry = (date.today() + timedelta(days=90)).isoformat()
    return [
        Role(
            "certificate",
            urls.ssl,
            frozenset({"certificate", "passphrase", "expires_at"}),
            lambda data, name: {**base, "certificate": upload(name, data)},
        ),
        Role(
            "key",
            urls.ssl,
            frozenset({"private_key", "passphrase"}),
            lambda data, name: {
                **base,
                "certificate": upload("valid.crt", valid.certificate_pem),
                "private_key": upload(name, data),
            },
        ),
        Role(
            "chain",
            urls.ssl,
            frozenset({"chain", "passphrase"}),
            lambda data, name: {
                **base,
                "certificate": upload("valid.crt", valid.certificate_pem),
                "private_key": upload("valid.key", valid.key_pem),
                "chain": upload(name, data),
            },
        ),
        Role(
            "p12",
            urls.apple,
            frozenset({"certificate", "passphrase"}),
            lambda data, name: {
                **base,
                "merchant_identifier": MERCHANT,
                "certificate": upload(f"{Path(name).stem}.p12", data),
                "passphrase": CORPUS_PKCS12_PASSWORD,
            },
        ),
        Role(
            "request complete",
            urls.request_complete,
            frozenset({"certificate"}),
            lambda data, name: {"certificate": upload(name, data)},
        ),
        Role(
            "identity proof",
            urls.proof,
            frozenset({"file"}),
            lambda data, name: {**base, "file": upload(name, data), "expires_at": expiry},
        ),
    ]


@dataclass
class Uploads:
    """Sends files in roles and records what went wrong, what each cost, what was kept."""

    client: object
    roles: list[Role]
    # The answer to an upload that was stored: the pages redirect to the certificate.
    accepted_status = 302
    failures: list[str] = field(default_factory=list)
    # Wall-clock seconds of each upload, printed for the record only.
    seconds: list[float] = field(default_factory=list)
    # CPU seconds of each upload (time.process_time()): the bound is on these.
    cpu_seconds: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)

    def send_all(self, data: bytes, label: str, *, roles: list[Role] | None = None) -> None:
        """``data`` in every role (or in ``roles``): each acceptance stores one certificate,
        a refusal none."""
        stored_before = Certificate.objects.count()
        accepted = 0
        for role in roles or self.roles:
            accepted += self.send(role, data, label)
        stored = Certificate.objects.count() - stored_before
        if stored != accepted:
            self.failures.append(f"{label}: {accepted} uploads accepted, {stored} stored")

    def send(self, role: Role, data: bytes, label: str) -> bool:
        """Upload ``data`` in ``role``; True when it was accepted."""
        post_data = role.post_data(data, Path(label).name)
        self.fresh_page()
        started, cpu_started = time.perf_counter(), time.process_time()
        response = self.client.post(role.url, post_data)
        cpu = time.process_time() - cpu_started
        self.seconds.append(time.perf_counter() - started)
        self.cpu_seconds.append(cpu)
        problem = self._problem(role, response)
        if cpu > UPLOAD_CPU_SECONDS_MAX:
            problem = f"{problem}; " if problem else ""
            problem += f"cost {cpu:.1f} s of CPU"
        if problem:
            self.failures.append(f"{label} as {role.name}: {problem}")
        return response.status_code == self.accepted_status

    def fresh_page(self) -> None:
        """Forget the files kept from the last attempt, as opening the page again does: each
        upload is judged on its own files."""
        session = self.client.session
        if session.pop(UPLOAD_DRAFT_SESSION_KEY, None) is not None:
            session.save()

    def _problem(self, role: Role, response) -> str:
        """What is wrong with the answer, "" when nothing."""
        if response.status_code == 302:
            self._count("accepted")
            return ""
        if response.status_code == 413:
            self._count("413")
            return "" if TOO_LARGE_PAGE_TITLE in response.content.decode() else "bare 413"
        if response.status_code != 200:
            return f"status {response.status_code}"
        self._count("refused")
        errors = errors_of(response)
        if not errors and response.context["form"].__dict__.get("expiry_prompt"):
            return ""  # an SSL certificate that cannot be read: the page asks for its expiry
        if not errors:
            return "answered 200 without any form error"
        if any(UNEXPECTED_FAILURE_MESSAGE in message for m in errors.values() for message in m):
            return f"the parser failed unexpectedly: {errors}"
        misplaced = {name: errors[name] for name in errors if name not in role.fields}
        return f"errors on other fields: {misplaced}" if misplaced else ""

    def _count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def report(self, title: str) -> str:
        ordered, cpu = sorted(self.seconds), sorted(self.cpu_seconds)
        return (
            f"{title}: {len(ordered)} uploads {self.outcomes}, "
            f"median {statistics.median(ordered) * 1000:.1f} ms, "
            f"max {ordered[-1] * 1000:.0f} ms, total {sum(ordered):.1f} s; "
            f"CPU median {statistics.median(cpu) * 1000:.1f} ms, max {cpu[-1] * 1000:.0f} ms"
        )

    def assert_clean(self, title: str) -> None:
        print(self.report(title))
        assert not self.failures, f"{len(self.failures)} failures:\n" + "\n".join(
            self.failures[:50]
        )


@pytest.fixture(scope="module")
def valid(pki):
    """A valid EC leaf under the session's test intermediate, with its key."""
    return demo_pki.leaf_create(issuer=pki["intermediate"], hostnames=["hostile.example.test"])


@pytest.fixture
def uploads(as_alice, alice, acme, valid):
    request = services.certificate_request_create(
        institution=acme,
        kind=CertificateRequest.Kind.APPLE_MERCHANT_IDENTITY,
        merchant_identifier=MERCHANT,
        name="hostile request",
        actor=alice,
    )
    return Uploads(
        client=as_alice,
        roles=roles_make(valid, page_urls(request), base={"institution": acme.pk}),
    )


# --------------------------------------------------------------------------- the corpus


def corpus_files() -> list[Path]:
    """Every file of the four folders, sorted so that a run is repeatable."""
    return sorted(
        path
        for folder in CORPUS_FOLDERS
        for path in (CORPUS_ROOT / folder).rglob("*")
        if path.is_file()
    )


def test_the_corpus_is_the_installed_package_not_a_copy():
    # The vectors come from the package the dev extra installs, not from the repository.
    assert "site-packages" in CORPUS_ROOT.parts
    counts = {
        folder: sum(1 for _ in (CORPUS_ROOT / folder).rglob("*")) for folder in CORPUS_FOLDERS
    }
    assert all(count > 0 for count in counts.values()), counts


# The corpus is CPU-bound parsing: it runs in one pass of CI only (tests/conftest.py).
corpus_once = pytest.mark.skipif(
    connection.vendor == "postgresql",
    reason="the corpus runs once, in the SQLite pass of CI: it exercises the parser and the "
    "views, whose database work is the same on PostgreSQL (some 100 s of CPU per pass)",
)


@corpus_once
@pytest.mark.parametrize("folder", CORPUS_FOLDERS)
def test_every_corpus_file_in_every_role_is_answered_without_error(uploads, folder):
    count = corpus_folder_send(uploads, folder)
    uploads.assert_clean(f"cryptography-vectors {folder}/ ({count} files)")


def corpus_folder_send(uploads: "Uploads", folder: str) -> int:
    """Every file of the corpus folder in the corpus roles; returns how many files."""
    files = [path for path in corpus_files() if path.relative_to(CORPUS_ROOT).parts[0] == folder]
    assert files
    # The roles the corpus is for; the identity proof takes any bytes and checks little,
    # so the corpus would only add minutes there (the mutations below do go through it).
    roles = [role for role in uploads.roles if role.name in CORPUS_ROLES]
    for path in files:
        uploads.send_all(path.read_bytes(), str(path.relative_to(CORPUS_ROOT)), roles=roles)
    return len(files)


# --------------------------------------------------------------------------- mutations

MUTATION_SEED = 7
# Each valid file is cut at these fractions of its length, and at a few bytes from each end.
TRUNCATION_FRACTIONS = (0.3, 0.6)
TRUNCATION_EDGES = (1, 20)
BIT_FLIPS_PER_FILE = 4
PASSPHRASE = CORPUS_PKCS12_PASSWORD


@pytest.fixture(scope="module")
def valid_files(pki, valid) -> dict[str, bytes]:
    """Valid files of every kind an operator uploads, made at run time."""
    rsa_leaf = demo_pki.leaf_create(
        issuer=pki["intermediate"], hostnames=["rsa.example.test"], key_type="rsa2048"
    )
    chain = [pki["intermediate"].certificate, pki["root"].certificate]
    return {
        "leaf.pem": valid.certificate_pem,
        "leaf.der": valid.der,
        "combined.pem": valid.key_pem + valid.certificate_pem + pki["intermediate"].certificate_pem,
        "pkcs8.key": valid.key_pem,
        "sec1.key": demo_pki.key_pem(valid.private_key, fmt="sec1"),
        "pkcs1.key": demo_pki.key_pem(rsa_leaf.private_key, fmt="pkcs1"),
        "encrypted.key": demo_pki.key_pem(valid.private_key, passphrase=PASSPHRASE.encode()),
        "key.der": demo_pki.key_der(valid.private_key),
        "bundle.p12": demo_pki.pkcs12_bundle(
            leaf=valid, chain=[pki["intermediate"]], password=PASSPHRASE.encode()
        ),
        "chain.p7b": pkcs7.serialize_certificates(chain, serialization.Encoding.DER),
        "chain.p7c": pkcs7.serialize_certificates(chain, serialization.Encoding.PEM),
    }


def truncations(data: bytes) -> list[bytes]:
    cuts = {int(len(data) * fraction) for fraction in TRUNCATION_FRACTIONS}
    cuts |= {edge for edge in TRUNCATION_EDGES} | {len(data) - edge for edge in TRUNCATION_EDGES}
    return [data[:cut] for cut in sorted(cuts) if 0 < cut < len(data)]


def bit_flips(data: bytes, generator: random.Random) -> list[bytes]:
    flipped = []
    for _ in range(BIT_FLIPS_PER_FILE):
        mutated = bytearray(data)
        position = generator.randrange(len(mutated))
        mutated[position] ^= 1 << generator.randrange(8)
        flipped.append(bytes(mutated))
    return flipped


def test_truncated_and_bit_flipped_files_in_every_role(uploads, valid_files):
    generator = random.Random(MUTATION_SEED)
    for name, data in valid_files.items():
        for number, mutated in enumerate(truncations(data)):
            uploads.send_all(mutated, f"{name} truncated to {len(mutated)} bytes #{number}")
        for number, mutated in enumerate(bit_flips(data, generator)):
            uploads.send_all(mutated, f"{name} bit flip #{number}")
    uploads.assert_clean("truncations and bit flips")


def pem(label: str, body: bytes) -> bytes:
    return (
        b"-----BEGIN "
        + label.encode()
        + b"-----\n"
        + body
        + b"\n-----END "
        + label.encode()
        + b"-----\n"
    )


def garbage_pem_files(valid: demo_pki.Issued) -> dict[str, bytes]:
    """PEM armour around things that are not what the label says."""
    generator = random.Random(MUTATION_SEED)
    noise = bytes(generator.randrange(256) for _ in range(700))
    noise_base64 = base64.encodebytes(noise)
    der = bytearray(valid.der)
    der[len(der) // 2 :] = bytes(len(der) - len(der) // 2)
    zeroed_base64 = base64.encodebytes(bytes(der))
    return {
        "binary noise in a CERTIFICATE block": pem("CERTIFICATE", noise),
        "base64 noise in a CERTIFICATE block": pem("CERTIFICATE", noise_base64),
        "base64 noise in a PRIVATE KEY block": pem("PRIVATE KEY", noise_base64),
        "base64 noise in an EC PRIVATE KEY block": pem("EC PRIVATE KEY", noise_base64),
        "base64 noise in an ENCRYPTED PRIVATE KEY block": pem(
            "ENCRYPTED PRIVATE KEY", noise_base64
        ),
        "base64 noise in a PKCS7 block": pem("PKCS7", noise_base64),
        "half-zeroed certificate": pem("CERTIFICATE", zeroed_base64),
        "legacy encryption headers with garbage": pem(
            "RSA PRIVATE KEY",
            b"Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,NOTHEX\n\n" + noise_base64,
        ),
        "headers only": pem("PRIVATE KEY", b"Proc-Type: 4,ENCRYPTED\nDEK-Info: DES-EDE3-CBC,00"),
        "empty blocks": pem("CERTIFICATE", b"") + pem("PRIVATE KEY", b""),
        "BEGIN without END": b"-----BEGIN CERTIFICATE-----\n" + noise_base64,
        "END without BEGIN": noise_base64 + b"-----END CERTIFICATE-----\n",
        "mismatched END": b"-----BEGIN CERTIFICATE-----\n" + noise_base64 + b"-----END KEY-----\n",
        "nested BEGIN": b"-----BEGIN CERTIFICATE-----\n" + pem("CERTIFICATE", noise_base64),
        "NUL bytes and a valid block": b"\x00" * 300 + valid.certificate_pem + b"\x00" * 300,
        "overlong label": pem("X" * 200, noise_base64),
        "lowercase label": pem("certificate", zeroed_base64),
        "UTF-16 without a byte order mark": valid.certificate_pem.decode().encode("utf-16-le"),
        "UTF-16 byte order mark and noise": b"\xff\xfe" + noise,
        "only a UTF-8 byte order mark": b"\xef\xbb\xbf",
        "whitespace only": b" \r\n\t \n",
    }


def test_pem_armour_around_garbage_in_every_role(uploads, valid):
    for label, data in garbage_pem_files(valid).items():
        uploads.send_all(data, label)
    uploads.assert_clean("PEM armour around garbage")


@pytest.fixture(scope="module")
def long_chain(pki) -> list[demo_pki.Issued]:
    """Three hundred CAs, each issued by the one before, under the session's root."""
    chain = [pki["root"]]
    for number in range(300):
        chain.append(demo_pki.ca_create(common_name=f"CA {number}", issuer=chain[-1]))
    return chain


def huge_chain_files(long_chain) -> dict[str, bytes]:
    leaf = demo_pki.leaf_create(issuer=long_chain[-1], hostnames=["deep.example.test"])
    intermediates = list(reversed(long_chain[1:]))
    pem_of = demo_pki.pem_join
    return {
        "300 linked intermediates as PEM": pem_of(*intermediates),
        "300 linked intermediates as PKCS#7": pkcs7.serialize_certificates(
            [ca.certificate for ca in intermediates], serialization.Encoding.DER
        ),
        "leaf, key and 300 intermediates": leaf.key_pem + pem_of(leaf, *intermediates),
        "100 intermediates as PEM": pem_of(*intermediates[:100]),
        "leaf and 99 intermediates": pem_of(leaf, *intermediates[:99]),
        "49 intermediates in reverse order": pem_of(*reversed(intermediates[:49])),
        "the same certificate 100 times": pem_of(*[leaf] * 100),
    }


def test_huge_chains_in_every_role(uploads, long_chain):
    for label, data in huge_chain_files(long_chain).items():
        uploads.send_all(data, label)
    uploads.assert_clean("huge chains")


def test_thousands_of_pem_blocks_in_every_role(uploads, valid):
    tiny = b"-----BEGIN A-----\n-----END A-----\n"
    files = {
        "1800 empty blocks": tiny * 1800,
        "3000 empty certificate blocks": pem("CERTIFICATE", b"") * 3000,
        "2000 BEGIN lines": b"-----BEGIN CERTIFICATE-----\n" * 2000,
        "2000 END lines": b"-----END CERTIFICATE-----\n" * 2000,
        "a valid certificate among 1500 empty blocks": tiny * 750
        + valid.certificate_pem
        + tiny * 750,
    }
    for label, data in files.items():
        uploads.send_all(data, label)
    uploads.assert_clean("thousands of PEM blocks")


# --------------------------------------------------------------------------- explicit curves


def openssl(command: str, *, cwd: Path) -> None:
    subprocess.run(
        [require_program("openssl"), *shlex.split(command)],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def explicit_curve(tmp_path_factory) -> dict[str, bytes]:
    """A P-256 key written with explicit curve parameters, a self-signed certificate and a CSR
    for it, and the same key on a custom curve (one coefficient changed), made by OpenSSL."""
    folder = tmp_path_factory.mktemp("explicit-curve")
    name = "-subj /CN=explicit.example.test"
    openssl("ecparam -name prime256v1 -param_enc explicit -genkey -noout -out key.pem", cwd=folder)
    openssl(f"req -x509 -new -key key.pem {name} -days 30 -out explicit.crt", cwd=folder)
    openssl(f"req -new -key key.pem {name} -out explicit.csr", cwd=folder)
    openssl("ec -in key.pem -outform DER -out key.der", cwd=folder)
    der = bytearray((folder / "key.der").read_bytes())
    # P-256's coefficient b starts with 5a c6 35 d8: change it and the curve is a custom one.
    coefficient_b = der.index(bytes.fromhex("5ac635d8"))
    der[coefficient_b + 5] ^= 0x01
    return {
        "key": (folder / "key.pem").read_bytes(),
        "certificate": (folder / "explicit.crt").read_bytes(),
        "request": (folder / "explicit.csr").read_bytes(),
        "custom curve key": bytes(der),
    }


# DER of the OID prime-field (1.2.840.10045.1.1): present only when the curve is spelled out.
PRIME_FIELD_OID = bytes.fromhex("06072a8648ce3d0101")


def pem_der(data: bytes) -> bytes:
    return base64.b64decode(b"".join(data.splitlines()[1:-1]))


def test_explicit_curve_parameters_in_every_role(uploads, explicit_curve):
    assert PRIME_FIELD_OID in pem_der(explicit_curve["key"])
    assert PRIME_FIELD_OID in pem_der(explicit_curve["certificate"])
    assert PRIME_FIELD_OID in explicit_curve["custom curve key"]
    for label, data in explicit_curve.items():
        uploads.send_all(data, f"explicit curve parameters: {label}")
    uploads.assert_clean("explicit curve parameters")


def test_a_key_with_explicit_p256_parameters_is_stored_as_a_named_curve_key(
    as_alice, acme, pki, explicit_curve
):
    # The CA issues the certificate naming the curve; the key file still spells it out.
    issued = demo_pki.csr_sign(csr_pem=explicit_curve["request"], issuer=pki["intermediate"])
    response = as_alice.post(
        SSL_URL,
        {
            "institution": acme.pk,
            "name": "explicit",
            "certificate": upload("explicit.crt", issued.public_bytes(serialization.Encoding.PEM)),
            "private_key": upload("explicit.pem", explicit_curve["key"]),
            "chain": upload("chain.crt", pki["intermediate"].certificate_pem),
        },
    )
    assert response.status_code == 302, errors_of(response)
    stored = serialization.load_pem_private_key(
        encryption.decrypt(Certificate.objects.get().private_key_encrypted), None
    )
    assert stored.curve.name == "secp256r1"
    # Written back as PKCS#8 naming the curve (OID 1.2.840.10045.3.1.7), as servers expect.
    named_curve_oid = bytes.fromhex("06082a8648ce3d030107")
    assert named_curve_oid in stored.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_a_certificate_with_explicit_curve_parameters_is_refused_on_its_field(
    as_alice, acme, explicit_curve
):
    response = as_alice.post(
        SSL_URL,
        {
            "institution": acme.pk,
            "name": "explicit",
            "certificate": upload("explicit.crt", explicit_curve["certificate"]),
            "private_key": upload("explicit.pem", explicit_curve["key"]),
        },
    )
    assert errors_of(response) == {"certificate": [EXPLICIT_CURVE_MESSAGE]}
    assert not Certificate.objects.exists()


def test_a_key_on_a_custom_curve_is_refused_on_the_key_field(as_alice, acme, valid, explicit_curve):
    response = as_alice.post(
        SSL_URL,
        {
            "institution": acme.pk,
            "name": "custom curve",
            "certificate": upload("valid.crt", valid.certificate_pem),
            "private_key": upload("custom.der", explicit_curve["custom curve key"]),
        },
    )
    assert errors_of(response) == {"private_key": [KEY_UNSUPPORTED_MESSAGE]}
    assert not Certificate.objects.exists()


# --------------------------------------------------------------------------- size limits

TEN_MB = 10 * 1000 * 1000


def test_a_10_mb_file_in_every_role_gets_the_413_page_quickly(uploads):
    uploads.send_all(os.urandom(TEN_MB), "10 MB of noise")
    uploads.send_all(pem("CERTIFICATE", b"A" * TEN_MB), "10 MB certificate block")
    uploads.assert_clean("10 MB bodies")
    assert uploads.outcomes == {"413": 2 * len(uploads.roles)}


def test_the_413_page_says_what_the_limit_is(as_alice, acme):
    response = as_alice.post(
        SSL_URL,
        {"institution": acme.pk, "name": "big", "certificate": upload("big.crt", bytes(TEN_MB))},
    )
    assert response.status_code == 413
    page = response.content.decode()
    assert TOO_LARGE_PAGE_TITLE in page
    assert "1.0\xa0MB" in page and "64 KiB" in page
    assert f'href="{SSL_URL}"' in page
    assert not Certificate.objects.exists()


@pytest.mark.parametrize("overshoot", [0, 1])
def test_the_request_body_cap_is_exact(as_alice, settings, overshoot):
    # A raw body (not multipart) of exactly the cap reaches the view, one byte more does not.
    body = b"x" * (settings.CERTMGR_REQUEST_BODY_MAX_BYTES + overshoot)
    response = as_alice.post(SSL_URL, body, content_type="application/octet-stream")
    if overshoot:
        assert response.status_code == 413
    else:
        assert response.status_code == 200
        assert "certificate" in errors_of(response)


def test_the_cap_is_checked_before_the_body_is_read():
    # The middleware answers from Content-Length alone: a body that fails when read is never
    # touched, and nothing after the middleware runs.
    class UnreadableBody:
        def read(self, *arguments):
            raise AssertionError("the body was read")

        readline = read

    request = RequestFactory().post(
        SSL_URL,
        b"",
        content_type="multipart/form-data; boundary=x",
        **{"wsgi.input": UnreadableBody(), "CONTENT_LENGTH": str(TEN_MB)},
    )
    request.user = AnonymousUser()

    def view_reached(request):
        raise AssertionError("the request went past the cap")

    response = RequestBodyLimitMiddleware(view_reached)(request)
    assert response.status_code == 413


# Each file field of each upload form: a file of exactly MAX_FILE_BYTES is read and refused
# for what it holds (text, no certificate or key; the identity proof takes it), one byte more
# is refused on that field for its size, before it is parsed.
PROOF_TOO_LARGE_MESSAGE = "The file is larger than 64 KiB; a domain-association file is a few KiB."
FILE_LIMITS = [
    ("certificate", "certificate", UNREADABLE_MESSAGE, TOO_LARGE_MESSAGE),
    ("key", "private_key", NOT_A_KEY_MESSAGE, TOO_LARGE_MESSAGE),
    ("chain", "chain", NO_CHAIN_CERTIFICATE_MESSAGE, TOO_LARGE_MESSAGE),
    ("p12", "certificate", UNREADABLE_MESSAGE, TOO_LARGE_MESSAGE),
    ("identity proof", "file", None, PROOF_TOO_LARGE_MESSAGE),
]


@pytest.mark.parametrize(("role_name", "field_name", "read_message", "size_message"), FILE_LIMITS)
def test_a_file_of_exactly_64_kib_is_read_and_one_byte_more_is_refused_on_its_field(
    uploads, role_name, field_name, read_message, size_message
):
    role = next(role for role in uploads.roles if role.name == role_name)
    at_limit = b"not a certificate " * (MAX_FILE_BYTES // 18) + b"!" * (MAX_FILE_BYTES % 18)
    assert len(at_limit) == MAX_FILE_BYTES

    response = uploads.client.post(role.url, role.post_data(at_limit, "limit.txt"))
    prompt = response.context["form"].__dict__.get("expiry_prompt") if response.context else ""
    if read_message is None:
        assert response.status_code == 302
    elif prompt:  # SSL: why it could not be read, with the question for its expiry date
        assert prompt.startswith(read_message)
    else:
        assert errors_of(response)[field_name][0] == read_message
    uploads.fresh_page()
    stored = Certificate.objects.count()

    response = uploads.client.post(role.url, role.post_data(at_limit + b"!", "limit.txt"))
    assert errors_of(response)[field_name] == [size_message]
    assert Certificate.objects.count() == stored


def test_a_file_between_the_file_limit_and_the_body_cap_is_refused_on_its_field(as_alice, acme):
    response = as_alice.post(
        SSL_URL,
        {
            "institution": acme.pk,
            "name": "medium",
            "certificate": upload("medium.crt", b"A" * (512 * 1024)),
        },
    )
    assert response.status_code == 200
    assert errors_of(response)["certificate"] == [TOO_LARGE_MESSAGE]


# --------------------------------------------------------------------------- expensive inputs
# Files whose uploader chose what reading them costs (tests/certificates/expensive_inputs.py
# builds them from DER at run time, deriving nothing with the declared parameters): each goes
# through the real views in the roles it threatens and must be refused on the right field,
# nothing stored, within EXPENSIVE_CPU_SECONDS_MAX of CPU time in this process. Without the
# checks they cost seconds to minutes each (an scrypt key with a large p, 8 s; a DSA key of
# 65,536 bits, 100 s; a 16,384-bit RSA key, 1.4 s to prove). The CPU time of each upload is
# printed (pytest -s).

EXPENSIVE_CPU_SECONDS_MAX = 1.0
HOSTILE_PASSWORD = b"pw"


@dataclass(frozen=True)
class Expensive:
    """One expensive file: how it is sent, where the refusal must be and what it must say."""

    label: str
    role: str
    data: bytes
    field: str
    words: str
    # For "SSL certificate and chain" (the certificate field holds the leaf, no key is given):
    # what the chain field holds.
    chain: bytes = b""


def expensive_post(case: Expensive, *, acme, valid: demo_pki.Issued, request_url: str):
    """(url, form data) that send the case's file in its role; the passphrase is always given."""
    role, data = case.role, case.data
    base = {"institution": acme.pk, "name": "expensive", "passphrase": HOSTILE_PASSWORD.decode()}
    certificate = upload("valid.crt", valid.certificate_pem)
    if role == "SSL key":
        return SSL_URL, {**base, "certificate": certificate, "private_key": upload("x.key", data)}
    if role == "SSL certificate":
        return SSL_URL, {**base, "certificate": upload("x.pem", data)}
    if role == "SSL both":
        combined = upload("combined.pem", valid.certificate_pem + data)
        return SSL_URL, {**base, "certificate": combined, "private_key": upload("x.key", data)}
    if role == "SSL certificate and chain":
        files = {"certificate": upload("x.pem", data), "chain": upload("chain.pem", case.chain)}
        return SSL_URL, {**base, **files}
    if role == "SSL chain":
        files = {"certificate": certificate, "private_key": upload("valid.key", valid.key_pem)}
        return SSL_URL, {**base, **files, "chain": upload("chain.pem", data)}
    if role == "Apple Pay":
        return APPLE_URL, {
            **base,
            "merchant_identifier": MERCHANT,
            "certificate": upload("x.p12", data),
        }
    if role == "CSR completion":
        return request_url, {"certificate": upload("x.cer", data)}
    assert role == "identity proof"
    expiry = (date.today() + timedelta(days=90)).isoformat()
    return PROOF_URL, {**base, "file": upload("proof", data), "expires_at": expiry}


def expensive_inputs(pki, valid: demo_pki.Issued) -> list[Expensive]:
    """Every expensive file, in every role where it could cost something."""
    generator = random.Random(MUTATION_SEED)
    key = expensive.der_of(valid.private_key)
    cheap_to_open = {"n": 2**14, "r": 8, "p": 1}

    def scrypt_key(n, r, p):
        encrypted = expensive.scrypt_encrypted_key(
            key, HOSTILE_PASSWORD, n=n, r=r, p=p, derive=False
        )
        return expensive.pem("ENCRYPTED PRIVATE KEY", encrypted)

    large_p = scrypt_key(2, 1, 2**22)
    large_memory = scrypt_key(2**20, 8, 1)
    standard_scrypt = expensive.pem(  # 0.04 s to open, as OpenSSL writes them
        "ENCRYPTED PRIVATE KEY",
        expensive.scrypt_encrypted_key(key, HOSTILE_PASSWORD, **cheap_to_open, derive=True),
    )
    algorithm, encrypted = expensive.pbkdf2_encrypted(
        key, HOSTILE_PASSWORD, iterations=1_000_000, derive=True
    )
    million_rounds = expensive.pem(
        "ENCRYPTED PRIVATE KEY", expensive.encrypted_private_key(algorithm, encrypted)
    )
    rsa_16384 = expensive.rsa_private_key(16384, generator)
    rsa_huge = expensive.rsa_private_key(98304, generator)
    rsa_8192 = expensive.rsa_private_key(8192, generator)
    dsa_65536 = expensive.dsa_pkcs8(65536, generator)
    dh_16384 = expensive.dh_pkcs8(16384, generator)
    dsa_encrypted = expensive.encrypted_private_key(
        *expensive.pbkdf2_encrypted(dsa_65536, HOSTILE_PASSWORD, iterations=1, derive=True)
    )
    issuer = pki["intermediate"]
    big_public = rsa.RSAPublicNumbers(65537, expensive.odd_without_small_factors(16384, generator))
    big_certificate = (
        x509.CertificateBuilder(
            issuer_name=issuer.certificate.subject,
            subject_name=x509.Name.from_rfc4514_string("CN=big.example.test"),
            public_key=big_public.public_key(),
            serial_number=x509.random_serial_number(),
            not_valid_before=issuer.certificate.not_valid_before_utc,
            not_valid_after=issuer.certificate.not_valid_after_utc,
        )
        .sign(issuer.private_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    p12 = demo_pki.pkcs12_bundle(leaf=valid, chain=[], password=HOSTILE_PASSWORD)
    certificate_bag = expensive.certificate_bag(valid.der)

    def hidden(*bags):
        # No integrity check and the empty password: every role opens the outer content.
        return expensive.pfx(expensive.encrypted_bags(certificate_bag, *bags, password=b""))

    hidden_scrypt = hidden(
        expensive.safe_bag(
            expensive.SHROUDED_KEY_BAG,
            expensive.scrypt_encrypted_key(key, b"", n=2, r=1, p=2**22, derive=False),
        )
    )
    hidden_dsa = hidden(expensive.safe_bag(expensive.KEY_BAG, dsa_65536))
    hidden_rsa = hidden(
        expensive.safe_bag(expensive.KEY_BAG, expensive.rsa_pkcs8(16384, generator))
    )
    slow_content = expensive.pfx(
        expensive.encrypted_content(
            *expensive.pbkdf2_encrypted(certificate_bag, b"", iterations=10**8, derive=False)
        )
    )
    slow_mac = expensive.with_mac_iterations(p12, 2**31 - 1)

    together = "Together, the password-protected keys"
    unusable = KEY_UNUSABLE_TYPE_MESSAGE
    holds_key = "holds a private key"
    needs_passphrase = "enter its passphrase"
    # Keys, alone or many in one file: (label, file, what the refusal says, and what it says
    # where no passphrase can be typed: completing a CSR).
    keys = [
        ("scrypt key with p = 2^22", large_p, "p=4,194,304", "p=4,194,304"),
        ("scrypt key asking for 1 GiB", large_memory, "1,024 MiB", "1,024 MiB"),
        ("four scrypt keys with p = 2^22", large_p * 4, "p=4,194,304", "p=4,194,304"),
        ("sixteen standard scrypt keys", standard_scrypt * 16, together, needs_passphrase),
        ("ten keys of 1,000,000 PBKDF2 rounds", million_rounds * 10, together, needs_passphrase),
        ("RSA key of 16,384 bits", expensive.pem("RSA PRIVATE KEY", rsa_16384), "16,384", "16,384"),
        ("DSA key of 65,536 bits", expensive.pem("PRIVATE KEY", dsa_65536), unusable, unusable),
        ("DH key of 16,384 bits", expensive.pem("PRIVATE KEY", dh_16384), unusable, unusable),
        (
            "encrypted DSA key of 65,536 bits",
            expensive.pem("ENCRYPTED PRIVATE KEY", dsa_encrypted),
            unusable,
            needs_passphrase,
        ),
    ]
    cases = []
    for label, data, words, without_passphrase in keys:
        cases += [
            Expensive(label, "SSL key", data, "private_key", words),
            Expensive(label, "SSL certificate", data, "certificate", words),
            Expensive(label, "Apple Pay", data, "certificate", words),
            Expensive(label, "CSR completion", data, "certificate", without_passphrase),
        ]
    ten_rsa_8192 = expensive.pem("RSA PRIVATE KEY", rsa_8192) * 10
    cases += [
        Expensive("ten 8,192-bit RSA keys", "SSL key", ten_rsa_8192, "private_key", "fit together"),
        Expensive(
            "keys of 1,000,000 rounds in two fields",
            "SSL both",
            million_rounds * 2,
            "private_key",
            together,
        ),
    ]
    for role in ("SSL certificate", "CSR completion"):
        cases += [
            Expensive("DER RSA key of 98,304 bits", role, rsa_huge, "certificate", holds_key),
            Expensive("DER RSA key of 16,384 bits", role, rsa_16384, "certificate", holds_key),
            Expensive("DER DSA key of 65,536 bits", role, dsa_65536, "certificate", holds_key),
            Expensive(
                "certificate with a 16,384-bit RSA key",
                role,
                big_certificate,
                "certificate",
                "16,384 bits",
            ),
        ]
    cases.append(
        Expensive(
            "certificate with a 16,384-bit RSA key",
            "SSL chain",
            big_certificate,
            "chain",
            "16,384 bits",
        )
    )
    # A leaf and as many candidate issuers named like its issuer as two fields hold: with a
    # 3,072-bit RSA key and a 3,071-bit exponent each verification of the leaf's signature
    # costs 9 ms, with a DSA key of 10,000 bits 17 ms.
    for label, signer, public_key, words in (
        (
            "issuers with 3,071-bit RSA exponents",
            # Signatures as long as the candidates' modulus, made with composite factors.
            serialization.load_der_private_key(
                expensive.rsa_private_key(3072, generator),
                None,
                unsafe_skip_rsa_key_validation=True,
            ),
            expensive.rsa_public_key_huge_exponent(3072, generator),
            "public exponent",
        ),
        (
            "issuers with 10,000-bit DSA keys",
            dsa.generate_private_key(1024),
            expensive.dsa_public_key(10000, generator),
            "DSA key has 10,000 bits",
        ),
    ):
        name = "CN=Impostor CA"
        leaf = expensive.certificate(
            "CN=leaf.example.test", name, valid.private_key.public_key(), signer
        )
        count = 60_000 // len(expensive.impostors(name, 1, public_key, signer))
        fake = leaf + expensive.impostors(name, count - 1, public_key, signer)
        other = expensive.impostors(name, count, public_key, signer, first_serial=count)
        label = f"{2 * count - 1} {label}"
        cases.append(
            Expensive(label, "SSL certificate and chain", fake, "certificate", words, chain=other)
        )
    for role in ("Apple Pay", "CSR completion"):
        cases += [
            Expensive(
                "PKCS#12 integrity check of 2^31 - 1 rounds",
                role,
                slow_mac,
                "certificate",
                "2,147,483,647 iterations",
            ),
            Expensive(
                "PKCS#12 content of 10^8 PBKDF2 rounds",
                role,
                slow_content,
                "certificate",
                "100,000,000 iterations",
            ),
            Expensive(
                "PKCS#12 hiding an scrypt key with p = 2^22",
                role,
                hidden_scrypt,
                "certificate",
                "p=4,194,304",
            ),
            Expensive(
                "PKCS#12 hiding a DSA key of 65,536 bits", role, hidden_dsa, "certificate", unusable
            ),
            Expensive(
                "PKCS#12 hiding a 16,384-bit RSA key",
                role,
                hidden_rsa,
                "certificate",
                "16,384 bits",
            ),
        ]
    for label, data in (
        ("DER RSA key of 98,304 bits", rsa_huge),
        ("DER DSA key of 65,536 bits", dsa_65536),
        ("DER encrypted DSA key", dsa_encrypted),
        ("PKCS#12 hiding a DSA key", hidden_dsa),
    ):
        cases.append(Expensive(label, "identity proof", data, "file", holds_key))
    return cases


def test_expensive_inputs_are_refused_on_their_field_within_a_bounded_cpu_time(
    as_alice, alice, acme, pki, valid
):
    request = services.certificate_request_create(
        institution=acme,
        kind=CertificateRequest.Kind.APPLE_MERCHANT_IDENTITY,
        merchant_identifier=MERCHANT,
        name="expensive request",
        actor=alice,
    )
    request_url = reverse("certificate_request_complete", args=[request.pk])
    failures, worst = [], (0.0, "")
    for case in expensive_inputs(pki, valid):
        url, data = expensive_post(case, acme=acme, valid=valid, request_url=request_url)
        cpu_started = time.process_time()
        response = as_alice.post(url, data)
        cpu = time.process_time() - cpu_started
        worst = max(worst, (cpu, f"{case.label} as {case.role}"))
        print(f"expensive input: {case.label} as {case.role}: {cpu * 1000:.0f} ms of CPU")
        name = f"{case.label} as {case.role}"
        if cpu > EXPENSIVE_CPU_SECONDS_MAX:
            failures.append(f"{name}: cost {cpu:.2f} s of CPU")
        if response.status_code != 200:
            failures.append(f"{name}: answered {response.status_code}, not a refusal")
            continue
        messages = errors_of(response).get(case.field, [])
        if not any(case.words in message for message in messages):
            failures.append(f"{name}: {case.field} says {messages}, not {case.words!r}")
    print(f"expensive inputs: the worst cost {worst[0] * 1000:.0f} ms of CPU ({worst[1]})")
    assert not Certificate.objects.exists()
    assert not failures, "\n".join(failures)
