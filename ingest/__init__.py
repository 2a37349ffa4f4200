"""Batch ingestion: parse → (privacy steps) → chunk → embed → index; the ``rag`` CLI and
the :class:`Workspace` facade (ingest, search and answer from one object)."""

from ingest._chunk import Chunker
from ingest._forget import Erasure, forget
from ingest._manage import Status, collection_status, delete, delete_documents, status
from ingest._pipeline import Progress, ingest, pipeline_fingerprint
from ingest._prepare import DocumentStep
from ingest._privacy import PseudonymizeStep
from ingest._report import FileError, RunReport
from ingest._workspace import Workspace
from rag import _offline  # noqa: F401  (before any third-party import)

__all__ = [
    "Chunker",
    "DocumentStep",
    "Erasure",
    "FileError",
    "Progress",
    "PseudonymizeStep",
    "RunReport",
    "Status",
    "Workspace",
    "collection_status",
    "delete",
    "delete_documents",
    "forget",
    "ingest",
    "pipeline_fingerprint",
    "status",
]
