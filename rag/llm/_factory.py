"""The chat model named by ``Settings.llm``, wrapped in retries and the shared rate limiter."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from rag._config import LlmSettings, Settings
from rag._errors import ConfigError, ProviderNotConfiguredError
from rag.llm._resilience import RateLimiter, ResilientChatModel, RetryPolicy
from rag.llm._types import ChatModel

StructuredOutput = Literal["json_schema", "json_object"]


def open_chat_model(
    settings: Settings, *, sleep: Callable[[float], None] = time.sleep
) -> ChatModel:
    """The configured provider's ChatModel, retrying per ``llm.max_retries`` and sharing
    one rate limiter per (provider, endpoint, model) in the process.

    Raises ProviderNotConfiguredError when ``llm.provider`` is unset, ConfigError when the
    provider lacks its endpoint or key.
    """
    llm = settings.llm
    inner = _adapter(llm)
    limiter = RateLimiter.shared(
        (llm.provider, _endpoint_key(inner), llm.model),
        llm.tokens_per_minute,
        llm.requests_per_minute,
    )
    return ResilientChatModel(inner, RetryPolicy.from_settings(llm), limiter, sleep=sleep)


def structured_output_mode(settings: Settings) -> StructuredOutput:
    """How to ask for the JSON answer: ``auto`` means JSON mode on Azure (its serverless
    Mistral deployments do not all take a schema), a JSON schema elsewhere."""
    mode = settings.llm.structured_output
    if mode != "auto":
        return mode
    return "json_object" if settings.llm.provider == "azure" else "json_schema"


def _adapter(llm: LlmSettings) -> ChatModel:
    key = llm.api_key.get_secret_value() if llm.api_key is not None else None
    if llm.provider is None:
        raise ProviderNotConfiguredError()
    if llm.provider == "mistral":
        from rag.llm._mistral import MistralChatModel

        if not key:
            raise _missing_key("Mistral's API needs a key")
        return MistralChatModel(
            api_key=key, model=llm.model, server_url=llm.endpoint, timeout_s=llm.timeout_s
        )
    from rag.llm._http import HttpChatModel

    if llm.provider == "azure":
        endpoint = _require_endpoint(llm, "https://<name>.<region>.models.ai.azure.com")
        if not key:
            raise _missing_key("Azure AI endpoints need the deployment's key")
        return HttpChatModel.azure(
            endpoint,
            model=llm.model,
            api_key=key,
            route=llm.azure_route,
            api_version=llm.api_version,
            timeout_s=llm.timeout_s,
        )
    endpoint = _require_endpoint(llm, "the server's base URL with /v1, e.g. http://gpu-1:8000/v1")
    return HttpChatModel.openai_compatible(
        endpoint, model=llm.model, api_key=key, timeout_s=llm.timeout_s
    )


def _require_endpoint(llm: LlmSettings, example: str) -> str:
    if not llm.endpoint:
        raise ConfigError(
            "llm.endpoint",
            f"provider {llm.provider!r} needs an endpoint",
            f"set llm.endpoint (or RAG_LLM__ENDPOINT) to {example}",
        )
    return llm.endpoint


def _missing_key(problem: str) -> ConfigError:
    return ConfigError(
        "llm.api_key",
        f"{problem} and none is set",
        "set RAG_LLM__API_KEY in the environment (keep keys out of rag.toml)",
    )


def _endpoint_key(model: ChatModel) -> str:
    return str(getattr(model, "url", None) or getattr(model, "server_url", ""))
