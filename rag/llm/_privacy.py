"""The privacy side of the answer stage: egress guard, pseudonymized tool results,
re-identification; no-ops when privacy is off."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rag._config import Settings
from rag._retrieve import Principal, Retriever
from rag.llm._types import ChatRequest


@dataclass
class AnswerPrivacy:
    """The privacy parts of the answer stage, or no-ops when privacy is off."""

    guard: Any = None
    pseudonymizer: Any = None
    reidentifier: Any = None

    @classmethod
    def build(cls, settings: Settings, retriever: Retriever) -> AnswerPrivacy:
        if not settings.privacy.enabled:
            return cls()
        from rag.privacy._audit import AuditLog
        from rag.privacy._guard import EgressGuard
        from rag.privacy._pseudonymize import Pseudonymizer
        from rag.privacy._reidentify import Reidentifier

        pz = next(
            (s.pseudonymizer for s in retriever.query_steps if hasattr(s, "pseudonymizer")),
            None,
        ) or Pseudonymizer.open(settings)
        audit = AuditLog.open(settings, pz.keys)
        return cls(
            guard=EgressGuard(settings, pz, audit),
            pseudonymizer=pz,
            reidentifier=Reidentifier(settings.privacy, pz.vault, audit),
        )

    def may_reveal(self, principal: Principal) -> bool:
        return self.reidentifier is not None and self.reidentifier.allowed(principal)

    def guarded(
        self, request: ChatRequest, provider: str, sources: Iterable[str] = ()
    ) -> ChatRequest:
        """The request as it may leave: checked (audited), redacted if so configured.

        ``sources`` are the passages' source paths: their file names are in the prompt
        in clear, and the guard's patterns must not read "minutes.md" as a URL."""
        if self.guard is None:
            return request
        result = self.guard.check(
            request.body(),
            provider=provider,
            model=request.model,
            request_id=request.request_id,
            tokens=request.prompt_tokens,
            file_names={_file_name(s) for s in sources},
        )
        if result.action == "redacted":
            return ChatRequest.from_body(
                result.body, request_id=request.request_id, prompt_tokens=request.prompt_tokens
            )
        return request

    def pseudonymize(self, text: str) -> str:
        return self.pseudonymizer.pseudonymize_text(text) if self.pseudonymizer else text


def _file_name(source: str) -> str:
    return source.replace("\\", "/").rsplit("/", 1)[-1]
