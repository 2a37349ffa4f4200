"""Process-wide defaults that keep third-party libraries offline and quiet.

Imported first by every package entry point, before unstructured, transformers or
tldextract are imported. Only defaults are set: an operator who exports a variable wins.
"""

from __future__ import annotations

import os

_DEFAULTS = {
    # Models load from local paths; nothing is fetched from a hub at run time.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    # unstructured: no usage pings, no banner (documents are sensitive; so is metadata).
    "SCARF_NO_ANALYTICS": "true",
    "DO_NOT_TRACK": "true",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    # tldextract (Presidio's e-mail/URL recognizers) must use its bundled suffix list.
    "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
    "TOKENIZERS_PARALLELISM": "false",
}


def apply_offline_defaults() -> None:
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)


apply_offline_defaults()
