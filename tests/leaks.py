"""What secret material looks like in bytes, to prove it appears nowhere it must not (database
files, dumps, logs): PEM key markers, each line of a key's base64 body, its DER bytes, Fernet
keys and tokens, passphrases."""

import base64

from cryptography.hazmat.primitives import serialization

# PEM lines are 64 characters; the last one of a body may be a handful, too short to be a
# telling fragment (it could occur by chance in any base64 text).
_SHORTEST_BODY_LINE = 20


class Secrets:
    """Collects fragments that must not appear, each with a name that says what it is."""

    def __init__(self) -> None:
        self.fragments: dict[str, bytes] = {"PEM private key marker": b"PRIVATE KEY"}

    def key(self, name: str, pem: bytes | str) -> None:
        """A private key (PEM, any format): each body line holding private bytes, and its
        PKCS#8 DER bytes.

        A PKCS#8 or SEC1 key also holds its public key, which certificates, CSRs and logs
        rightly show: a body line whose bytes all lie within the public key is not secret.
        """
        pem = pem.encode() if isinstance(pem, str) else pem
        encrypted = b"ENCRYPTED" in pem or b"Proc-Type" in pem
        public = b""
        if not encrypted:
            key = serialization.load_pem_private_key(pem, password=None)
            der = key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            public = key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            self.fragments[f"{name} DER"] = der
            self.fragments[f"{name} DER, base64 on one line"] = base64.b64encode(der)[:64]
            self.fragments[f"{name} DER, hex"] = der.hex().encode()  # bytea in pg_dump
        lines = [line.strip() for line in pem.splitlines() if line and b"-----" not in line]
        for number, line in enumerate(lines):
            if len(line) < _SHORTEST_BODY_LINE or b":" in line:  # a PEM header, or too short
                continue
            if public and len(line) % 4 == 0 and base64.b64decode(line) in public:
                continue
            self.fragments[f"{name} body line {number}"] = line

    def fernet_key(self, name: str, key: str) -> None:
        """A Fernet key: its text and its raw 32 bytes (signing and encryption halves)."""
        self.fragments[name] = key.encode()
        raw = base64.urlsafe_b64decode(key)
        self.fragments[f"{name} signing half"] = raw[:16]
        self.fragments[f"{name} encryption half"] = raw[16:]

    def text(self, name: str, value: bytes | str) -> None:
        """Any other secret (a passphrase, a Fernet token): its exact bytes."""
        self.fragments[name] = value.encode() if isinstance(value, str) else value

    def found_in(self, data: bytes | str) -> list[str]:
        """The names of the fragments that occur in `data` (empty: nothing leaked)."""
        data = data.encode() if isinstance(data, str) else data
        return [name for name, fragment in self.fragments.items() if fragment in data]
