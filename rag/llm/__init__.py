"""Generation: one ChatModel port for Mistral's API, Azure AI and OpenAI-compatible
servers; JSON answers with checked citations; tools; streaming; limits and retries.

Provider SDKs are imported inside their adapters, so importing this package is cheap.
"""

from rag.llm._answer import (
    ANSWER_SCHEMA,
    Answer,
    AnswerModel,
    Citation,
    CitationModel,
    Passage,
    ToolRun,
    validate_answer,
)
from rag.llm._factory import open_chat_model, structured_output_mode
from rag.llm._generate import (
    ANSWER_SYSTEM_PROMPT,
    AnswerDelta,
    AnswerDone,
    Answerer,
    AnswerEvent,
    AnswerRestart,
    ToolStep,
)
from rag.llm._http import HttpChatModel
from rag.llm._mistral import MistralChatModel
from rag.llm._resilience import RateLimiter, ResilientChatModel, RetryPolicy
from rag.llm._stream import sse_event
from rag.llm._tools import Tool, ToolArgumentError, ToolSet, tool
from rag.llm._types import (
    ChatDelta,
    ChatEvent,
    ChatModel,
    ChatRequest,
    ChatResponse,
    Message,
    ToolCall,
    Usage,
)

__all__ = [
    "ANSWER_SCHEMA",
    "ANSWER_SYSTEM_PROMPT",
    "Answer",
    "AnswerDelta",
    "AnswerDone",
    "AnswerEvent",
    "AnswerModel",
    "AnswerRestart",
    "Answerer",
    "ChatDelta",
    "ChatEvent",
    "ChatModel",
    "ChatRequest",
    "ChatResponse",
    "Citation",
    "CitationModel",
    "HttpChatModel",
    "Message",
    "MistralChatModel",
    "Passage",
    "RateLimiter",
    "ResilientChatModel",
    "RetryPolicy",
    "Tool",
    "ToolArgumentError",
    "ToolCall",
    "ToolRun",
    "ToolSet",
    "ToolStep",
    "Usage",
    "open_chat_model",
    "sse_event",
    "structured_output_mode",
    "tool",
    "validate_answer",
]
