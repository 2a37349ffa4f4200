"""Error taxonomy.

Every message says what failed and how to fix it. Messages carry ids, paths, counts
and setting names only: never document text, PII values or keys.
"""

from __future__ import annotations


class RagError(Exception):
    """Base of every error raised by sovereign-rag."""


class ConfigError(RagError):
    """A setting is missing or invalid; the message names the setting."""

    def __init__(self, setting: str, problem: str, fix: str = "") -> None:
        self.setting = setting
        message = f"setting {setting!r}: {problem}"
        if fix:
            message += f" ({fix})"
        super().__init__(message)


class DependencyError(RagError):
    """An optional package or system program needed for a feature is missing."""


#: Stable reason codes of :class:`ParseError`, for grouping run reports.
PARSE_REASONS = frozenset(
    {
        "empty",  # 0 bytes, or nothing but whitespace
        "encrypted",  # password-protected
        "unsupported",  # a file type that is not parsed (archives included)
        "corrupt",  # the library could not read it (truncated, malformed)
        "too_large",  # over ingest.max_file_mb
        "missing_dependency",  # needs a program or package that is not installed
        "encoding",  # text that cannot be decoded
        "no_text",  # parsed, but nothing extractable (e.g. a scan without OCR)
    }
)


class ParseError(RagError):
    """A file could not be turned into text.

    ``reason`` is one of :data:`PARSE_REASONS`; ``hint`` says what the operator can do.
    """

    def __init__(self, reason: str, detail: str, hint: str = "") -> None:
        if reason not in PARSE_REASONS:
            raise ValueError(f"unknown parse reason {reason!r}")
        self.reason = reason
        self.detail = detail
        self.hint = hint
        super().__init__(f"{reason}: {detail}" + (f" ({hint})" if hint else ""))


class EmbeddingError(RagError):
    """The embedding model could not be loaded or failed on a batch."""


class StoreError(RagError):
    """The vector store rejected an operation or is unreachable."""


class StoreLockedError(StoreError):
    """The embedded index is open in another process (Qdrant Edge allows one opener)."""


class CollectionMismatchError(StoreError):
    """An existing collection was built with a different vector size or layout."""


class FilterError(RagError):
    """A metadata filter names an unknown payload key or has an invalid value."""


class AccessError(RagError):
    """A query without a valid principal, or one the collection's ACLs cannot serve."""


class ContextOverflowError(RagError):
    """The fixed parts of a request (system prompt, tools, question, answer) exceed the window."""


class PrivacyError(RagError):
    """The privacy layer cannot guarantee that no personal data leaks; nothing was done."""


class VaultError(PrivacyError):
    """The vault cannot be opened or read: wrong key, damaged file, or a newer schema."""


class EgressBlockedError(PrivacyError):
    """An outgoing request still held personal data and was not sent.

    ``findings`` lists entity types and counts only, never the values.
    """

    def __init__(self, message: str, findings: dict[str, int] | None = None) -> None:
        self.findings = dict(findings or {})
        super().__init__(message)


class LlmError(RagError):
    """Generation failed; ``provider`` names the chat model's provider.

    Subclasses say what happened; ``retryable`` ones were retried (bounded) before they
    reached the caller.
    """

    retryable = False

    def __init__(self, message: str, *, provider: str = "", status: int | None = None) -> None:
        self.provider = provider
        self.status = status
        super().__init__(message)


class ProviderNotConfiguredError(ConfigError):
    """No LLM provider is configured (``llm.provider``), so nothing can be generated."""

    def __init__(self) -> None:
        super().__init__(
            "llm.provider",
            "no LLM provider is configured",
            'set llm.provider to "mistral", "azure" or "openai-compatible" with llm.endpoint '
            "and llm.api_key (or RAG_LLM__PROVIDER, RAG_LLM__ENDPOINT, RAG_LLM__API_KEY)",
        )


class AuthenticationError(LlmError):
    """The provider refused the credentials (401/403): the key is missing, wrong or expired."""


class BadRequestError(LlmError):
    """The provider refused the request (400/404/422): unknown model, route or field."""


class RateLimitError(LlmError):
    """429 from the provider, still there after the bounded retries (or a Retry-After too long).

    ``retry_after`` is the provider's advice in seconds, when it gave one.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, provider=provider, status=status)


class ProviderUnavailableError(LlmError):
    """5xx, a reset connection or an unreadable response, still failing after retries."""

    retryable = True


class ProviderTimeoutError(ProviderUnavailableError):
    """The provider did not answer within ``llm.timeout_s``, after retries."""


class ContentFilterError(LlmError):
    """The provider's content filter stopped the prompt or the answer."""


class AnswerTruncatedError(LlmError):
    """The answer hit ``max_tokens`` (finish reason ``length``) before it was complete."""


class InvalidAnswerError(LlmError):
    """The model's answer was not valid JSON with verifiable citations, even after one repair.

    ``problems`` says what was wrong (labels, counts, field names), never the text.
    """

    def __init__(self, message: str, problems: list[str], *, provider: str = "") -> None:
        self.problems = list(problems)
        super().__init__(message, provider=provider)


class ToolLoopError(LlmError):
    """The model kept calling tools past ``llm.max_tool_steps``."""


class ToolError(RagError):
    """A tool cannot be registered (bad signature, name or schema)."""
