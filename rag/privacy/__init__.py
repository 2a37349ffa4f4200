"""The privacy layer: PII detection, corpus-wide pseudonymization, encrypted vault,
re-identification, egress guard and hash-chained audit log.

Presidio and spaCy are imported on first use (by :class:`PresidioDetector`), so importing
this package stays cheap.
"""

from rag.privacy._audit import AuditLog, AuditReport
from rag.privacy._detect import Detector, PresidioDetector, Span
from rag.privacy._guard import KNOWN_VALUE, EgressGuard, GuardResult
from rag.privacy._keys import PrivacyKeys, generate_key, parse_key, write_key_file
from rag.privacy._pseudonymize import Pseudonymized, Pseudonymizer, Replacement, placeholders_in
from rag.privacy._reidentify import Reidentifier, RevealSession, may_reidentify
from rag.privacy._text import PLACEHOLDER, normalize
from rag.privacy._vault import NewValue, Vault, VaultEntry

__all__ = [
    "KNOWN_VALUE",
    "PLACEHOLDER",
    "AuditLog",
    "AuditReport",
    "Detector",
    "EgressGuard",
    "GuardResult",
    "NewValue",
    "PresidioDetector",
    "PrivacyKeys",
    "Pseudonymized",
    "Pseudonymizer",
    "Reidentifier",
    "Replacement",
    "RevealSession",
    "Span",
    "Vault",
    "VaultEntry",
    "generate_key",
    "may_reidentify",
    "normalize",
    "parse_key",
    "placeholders_in",
    "write_key_file",
]
