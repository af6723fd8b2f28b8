"""The newest revocation list a party has seen, so that an older one cannot un-revoke.

A CRL is signed by the CA, but an old CRL is still validly signed: whoever can put an
older ``crl.pem`` in place would bring back every certificate revoked since. Each list
carries a CRL number (one more at each issue, `fedstats certs revoke`) and a thisUpdate
time; a party keeps the highest it has accepted, in memory and in a small JSON file in
its state directory (so a restart does not forget it), and refuses a list that goes
backwards in either.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from common.durable import write_durably
from common.errors import ConfigError

__all__ = ["CRL_SEEN_FILE", "CrlMark", "check_forward", "crl_mark", "read_seen", "record_seen"]

CRL_SEEN_FILE = "crl-seen.json"
"""The file, in a party's state directory, that keeps the newest CRL it accepted."""


@dataclass(frozen=True, order=True)
class CrlMark:
    """Where a CRL stands in its CA's sequence: its number, then its thisUpdate."""

    number: int
    this_update: dt.datetime

    def describe(self) -> str:
        """E.g. ``CRL number 4 (thisUpdate 2026-11-30 18:00 UTC)``."""
        return f"CRL number {self.number} (thisUpdate {self.this_update:%Y-%m-%d %H:%M:%S} UTC)"


def crl_mark(crl: x509.CertificateRevocationList, path: Path) -> CrlMark:
    """The CRL's number and thisUpdate.

    Raises:
        ConfigError: The list has no CRL number (it cannot be ordered, so it is refused).
    """
    try:
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        raise ConfigError(
            f"tls.crl: {path} has no CRL number, so it cannot be told from an older list",
            field="tls.crl",
            hint="use the crl.pem that `fedstats certs revoke` writes (it numbers each list)",
        ) from None
    return CrlMark(int(number), crl.last_update_utc)


def ca_key_id(ca: x509.Certificate) -> str:
    """SHA-256 of the CA's public key: a new CA starts a new sequence of numbers."""
    der = ca.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def read_seen(seen: Path, ca: x509.Certificate) -> CrlMark | None:
    """The newest CRL of this CA recorded in ``seen`` (None: none yet, or another CA's).

    Raises:
        ConfigError: The file exists but cannot be read as a record.
    """
    try:
        data = json.loads(seen.read_text(encoding="utf-8"))
        if data["ca"] != ca_key_id(ca):
            return None
        return CrlMark(int(data["crl_number"]), dt.datetime.fromisoformat(data["this_update"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{seen}: not a record of the newest revocation list seen ({exc})",
            field="tls.crl",
            hint="fedstats writes this file; if it was damaged, put the CA's latest crl.pem "
            "in place and delete the file, then start again",
        ) from None


def check_forward(path: Path, mark: CrlMark, highest: CrlMark | None, seen: Path | None) -> None:
    """Refuse the CRL at ``path`` when it is older than the ``highest`` already accepted.

    Raises:
        ConfigError: Its number or its thisUpdate is below the highest seen.
    """
    if highest is None or (
        mark.number >= highest.number and mark.this_update >= highest.this_update
    ):
        return
    where = f" (recorded in {seen})" if seen is not None else ""
    raise ConfigError(
        f"tls.crl: {path} goes backwards: it is {mark.describe()}, but {highest.describe()} "
        f"was already accepted{where}; an older list would un-revoke certificates",
        field="tls.crl",
        hint="put the CA's latest crl.pem in place (`fedstats certs revoke --dir CA` "
        "re-issues it); until then every call that needs the list is refused",
    )


def record_seen(seen: Path, ca: x509.Certificate, mark: CrlMark, path: Path) -> None:
    """Persist ``mark`` as the newest CRL of this CA accepted (atomically, fsynced)."""
    record = {
        "ca": ca_key_id(ca),
        "crl_number": mark.number,
        "this_update": mark.this_update.isoformat(),
        "file": str(path),
    }
    write_durably(seen, (json.dumps(record, indent=2) + "\n").encode())
