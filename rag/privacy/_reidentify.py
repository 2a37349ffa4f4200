"""Re-identification: placeholders back to values, for allowed principals only, audited."""

from __future__ import annotations

from rag._config import PrivacySettings
from rag._errors import AccessError
from rag._retrieve import Principal
from rag.privacy._audit import AuditLog
from rag.privacy._text import PLACEHOLDER
from rag.privacy._vault import Vault


def may_reidentify(settings: PrivacySettings, principal: Principal) -> bool:
    """Whether ``principal`` is listed in ``privacy.reidentify`` (as ``user:`` or ``group:``)."""
    allowed = set(settings.reidentify)
    if f"user:{principal.user}" in allowed:
        return True
    return any(f"group:{g}" in allowed for g in principal.groups)


class Reidentifier:
    """Turns ``<PERSON_3f9a1c2b>`` back into the value for principals allowed by config."""

    def __init__(self, settings: PrivacySettings, vault: Vault, audit: AuditLog) -> None:
        self.settings = settings
        self.vault = vault
        self.audit = audit

    def allowed(self, principal: Principal) -> bool:
        return may_reidentify(self.settings, principal)

    def reidentify(self, text: str, principal: Principal, *, request_id: str | None = None) -> str:
        """``text`` with every placeholder the vault can still reveal replaced by its value.

        Raises :class:`~rag.AccessError` (and audits the refusal) for other principals.
        Erased values stay placeholders. The audit record holds who, when, how many
        placeholders and the request id, never the values.
        """
        if not isinstance(principal, Principal):
            raise AccessError("re-identification needs a rag.Principal, not a plain string")
        found = list(dict.fromkeys(m.group() for m in PLACEHOLDER.finditer(text)))
        if not self.allowed(principal):
            self.audit.append(
                "reidentify_denied",
                user=principal.user,
                groups=list(principal.groups),
                placeholders=len(found),
                request_id=request_id,
            )
            raise AccessError(
                "this principal may not re-identify personal data; an administrator can add "
                "it to privacy.reidentify (as user:<id> or group:<name>)"
            )
        values = self.vault.reveal(found) if found else {}
        self.audit.append(
            "reidentify",
            user=principal.user,
            groups=list(principal.groups),
            placeholders=len(found),
            revealed=len(values),
            request_id=request_id,
        )
        if not values:
            return text
        return PLACEHOLDER.sub(lambda m: values.get(m.group(), m.group()), text)

    def session(self, principal: Principal, *, request_id: str | None = None) -> RevealSession:
        """Incremental re-identification (a streamed answer), audited once at ``close()``.

        Raises :class:`~rag.AccessError` (audited) at once for a principal not allowed.
        """
        if not isinstance(principal, Principal):
            raise AccessError("re-identification needs a rag.Principal, not a plain string")
        if not self.allowed(principal):
            self.audit.append(
                "reidentify_denied",
                user=principal.user,
                groups=list(principal.groups),
                placeholders=0,
                request_id=request_id,
            )
            raise AccessError(
                "this principal may not re-identify personal data; an administrator can add "
                "it to privacy.reidentify (as user:<id> or group:<name>)"
            )
        return RevealSession(self, principal, request_id)


class RevealSession:
    """Reveals placeholders batch by batch; one audit record for the whole session."""

    def __init__(self, owner: Reidentifier, principal: Principal, request_id: str | None) -> None:
        self._owner = owner
        self._principal = principal
        self._request_id = request_id
        self._asked: set[str] = set()
        self._revealed: set[str] = set()
        self._closed = False

    def reveal(self, placeholders: list[str]) -> dict[str, str]:
        wanted = [p for p in placeholders if PLACEHOLDER.fullmatch(p)]
        self._asked.update(wanted)
        values = self._owner.vault.reveal(wanted) if wanted else {}
        self._revealed.update(values)
        return values

    def reidentify(self, text: str) -> str:
        found = list(dict.fromkeys(m.group() for m in PLACEHOLDER.finditer(text)))
        values = self.reveal(found) if found else {}
        if not values:
            return text
        return PLACEHOLDER.sub(lambda m: values.get(m.group(), m.group()), text)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._owner.audit.append(
            "reidentify",
            user=self._principal.user,
            groups=list(self._principal.groups),
            placeholders=len(self._asked),
            revealed=len(self._revealed),
            request_id=self._request_id,
        )
