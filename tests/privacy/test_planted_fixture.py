"""Self-checks of the two test-data generators: eval.synthetic_pii and planted.py."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import phonenumbers
import pytest
from planted import build_planted_corpus, encodings_of

from eval.synthetic_pii import (
    CHECKS,
    ENTITIES,
    TEMPLATES,
    SyntheticDoc,
    es_id_ok,
    generate,
    iban_ok,
    it_fiscal_code_ok,
    luhn_ok,
    main,
    read_jsonl,
    score,
    us_ssn_ok,
)

HONORIFIC = re.compile(r"(Mrs?|Ms|Dr|Mme|Madame|Monsieur|Herr|Frau|Sra?|Dña|Sig|Dott|Ing|Avv)\b")


@pytest.fixture(scope="module")
def docs() -> list[SyntheticDoc]:
    return generate()


# --------------------------------------------------------------------------- synthetic


def test_checksum_helpers_accept_known_values_and_reject_corrupted_ones() -> None:
    assert luhn_ok("4111 1111 1111 1111") and not luhn_ok("4111 1111 1111 1112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB82 WEST 1234 5698 7654 33")
    assert es_id_ok("12345678Z") and not es_id_ok("12345678A")
    assert es_id_ok("X1234567L") and not es_id_ok("X1234567A")
    assert it_fiscal_code_ok("RSSMRA85T10A562S") and not it_fiscal_code_ok("RSSMRA85T10A562T")
    assert us_ssn_ok("078-05-1120") and not us_ssn_ok("666-05-1120")


def test_generation_is_deterministic_for_a_seed() -> None:
    first = generate(40, seed=3)
    assert first == generate(40, seed=3)
    assert [d.text for d in first] != [d.text for d in generate(40, seed=4)]
    french = generate(10, seed=3, languages=("fr",))
    assert {d.language for d in french} == {"fr"}
    with pytest.raises(ValueError, match=r"unsupported languages \['pt'\]"):
        generate(5, languages=("en", "pt"))


def test_gold_spans_are_exact_sorted_and_checksum_valid(docs: list[SyntheticDoc]) -> None:
    for doc in docs:
        end = 0
        for start, stop, entity in doc.spans:
            value = doc.text[start:stop]
            assert start >= end and value and value == value.strip(), (doc.doc_id, value)
            assert entity in ENTITIES
            end = stop
            if entity == "PERSON":
                assert not HONORIFIC.match(value), (doc.doc_id, value)
            if entity in CHECKS:
                assert CHECKS[entity](value), (doc.doc_id, entity)
            if entity == "PHONE_NUMBER":
                assert len(re.sub(r"\D", "", value)) >= 9, (doc.doc_id, value)


def test_corpus_is_varied(docs: list[SyntheticDoc]) -> None:
    assert len(TEMPLATES) >= 40
    assert len({(d.language, d.kind) for d in docs}) == len(TEMPLATES)  # all used
    assert Counter(d.language for d in docs) == {"en": 100, "fr": 50, "de": 50, "es": 50, "it": 50}
    counts = Counter(entity for d in docs for _, _, entity in d.spans)
    assert set(counts) == set(ENTITIES)
    assert min(counts.values()) >= 20
    text = "\n".join(d.text for d in docs)
    for distractor in (r"GAO-\d\d-\d{3}", r"\bv\d+\.\d+", r"section \d\.\d", r"Frau Dr\. \w"):
        assert re.search(distractor, text), distractor
    assert re.search(r"\w's\b", text) and re.search(r"\b(van der|de la|O')", text)


def test_people_recur_by_surname_after_a_full_mention(docs: list[SyntheticDoc]) -> None:
    recurring = 0
    with_people = 0
    for doc in docs:
        names = [doc.text[s:e] for s, e, t in doc.spans if t == "PERSON"]
        if not names:
            continue
        with_people += 1
        full = [n for n in names if " " in n and "," not in n]
        # A later bare mention equal to the last word(s) of an earlier full name.
        if any(n != f and " " not in n and f.endswith(" " + n) for f in full for n in names):
            recurring += 1
    assert recurring / with_people > 0.5


def test_score_counts_overlaps_by_type_and_characters_by_any_type() -> None:
    text = "Call Anna Smith at +44 20 7946 0958 today."
    doc = SyntheticDoc("d", "en", "t", text, ((5, 15, "PERSON"), (19, 35, "PHONE_NUMBER")))
    perfect = score([doc], [list(doc.spans)])
    assert perfect["ALL"]["recall"] == perfect["ALL"]["precision"] == 1.0

    partial = score([doc], [[(5, 9, "PERSON"), (19, 35, "US_SSN"), (0, 4, "PERSON")]])
    assert partial["PERSON"]["recall"] == 1.0  # "Anna" overlaps the gold name
    assert partial["PERSON"]["precision"] == 0.5  # "Call" overlaps nothing
    assert partial["PERSON"]["char_recall"] == round(4 / 9, 4)
    assert partial["PERSON"]["hidden"] == 0.0
    assert partial["PHONE_NUMBER"]["recall"] == 0.0  # wrong type...
    assert partial["PHONE_NUMBER"]["char_recall"] == 1.0  # ...but the value is hidden
    assert partial["US_SSN"]["precision"] == 0.0
    assert score([doc], [[]])["ALL"]["recall"] == 0.0
    with pytest.raises(ValueError, match=r"1 predictions for 2 documents"):
        score([doc, doc], [[]])


def test_cli_writes_jsonl_that_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "synthetic.jsonl"
    main(["--n", "6", "--seed", "5", "--out", str(out)])
    assert read_jsonl(out) == generate(6, seed=5)
    row = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert set(row) == {"doc_id", "language", "kind", "text", "spans"}


# --------------------------------------------------------------------------- planted


def _phone_ok(value: str) -> bool:
    region = None if value.startswith("+") else ("FR" if value.startswith("01") else "DE")
    if value.startswith("("):
        region = "US"
    return phonenumbers.is_valid_number(phonenumbers.parse(value, region))


def test_planted_values_are_fake_valid_and_spread(tmp_path: Path) -> None:
    corpus = build_planted_corpus(tmp_path / "docs")
    suffixes = {p.suffix for p in corpus.files}
    assert suffixes == {".txt", ".md", ".docx", ".xlsx", ".csv", ".eml", ".html", ".pdf"}
    values = corpus.values
    assert all(re.search(r"@example\.(com|org|de)$", v) for v in values["EMAIL_ADDRESS"])
    assert all(iban_ok(v) for v in values["IBAN_CODE"])
    assert all(luhn_ok(v) for v in values["CREDIT_CARD"])
    assert all(_phone_ok(v) for v in values["PHONE_NUMBER"])
    planted = corpus.searchable()
    assert any(not v.isascii() for v in values["PERSON"])
    assert any("Straße" in v or "straße" in v for v in values["ADDRESS"])
    for value in planted:
        assert any(value in found for found in corpus.by_file.values()), value
        assert not any(value.lower() in p.name.lower() for p in corpus.files), value
    for name, forms in corpus.people.items():
        assert sum(name in found for found in corpus.by_file.values()) >= 2, name
        for form in forms:  # used on its own somewhere, not only inside the full name
            rest = [f for found in corpus.by_file.values() for f in found if f != name]
            assert form in rest, form
    txt = (corpus.root / "supplier-onboarding.txt").read_text(encoding="utf-8")
    assert "Margaret Thornbury signed the supplier agreement on 3 March 2024." in txt
    assert "Ms Thornbury" in txt


def test_encodings_of_covers_common_escapes() -> None:
    forms = encodings_of("Lefèvre")
    assert len(forms) == len(set(forms))
    for expected in (
        "Lefèvre".encode(),
        "Lefèvre".encode("utf-16-le"),
        b"Lef\xe8vre",  # cp1252 / latin-1
        b"Lef\\u00e8vre",
        b"Lef&egrave;vre",
        b"Lef&#232;vre",
        b"Lef&#xe8;vre",
        b"Lef%C3%A8vre",
        b"lef\xc3\xa8vre",
    ):
        assert expected in forms, expected
    assert b"Thornbury" in encodings_of("Thornbury")
    assert b"a.wurmbach%40example.de" in encodings_of("a.wurmbach@example.de")


@pytest.mark.slow
def test_every_planted_file_parses_with_its_values(tmp_path: Path) -> None:
    from ingest._parse import parse_file
    from rag import load_settings

    settings = load_settings(home=tmp_path / "home")
    corpus = build_planted_corpus(tmp_path / "docs")
    for path in corpus.files:
        parsed = parse_file(path, settings.parse, max_bytes=10**8)
        text = "\n".join(element.text for element in parsed.elements)
        # E-mail headers (From/To/Cc) land in the metadata, not in the body text.
        headers = json.dumps(dict(parsed.metadata), ensure_ascii=False)
        for value in corpus.by_file[path.name]:
            haystack = text + headers if path.suffix == ".eml" else text
            assert value in haystack, (path.name, value)
