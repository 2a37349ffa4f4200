"""PII detector: patterns, text structure, NER filters, structured values, settings.

Most tests run pattern-only (``privacy.ner = "none"``); those loading a model are slow and
share one detector per module.
"""

from __future__ import annotations

import os
import pickle
import socket
from pathlib import Path

import pytest

import rag  # noqa: F401  (offline defaults before presidio and tldextract are imported)
from rag._config import CustomRecognizer, DenyTerm, PrivacySettings
from rag._errors import ConfigError
from rag._types import Element, ParsedDocument
from rag.privacy._detect import (
    PresidioDetector,
    Span,
    _split_long,
    is_common_phrase,
    is_place_name,
    keep_ner_span,
    structured_values,
)

ALL_LANGUAGES = ("en", "fr", "de", "es", "it")


def _found(text: str, **settings: object) -> list[tuple[str, str]]:
    """(entity, value) of every span, pattern-only unless ``ner`` is given."""
    settings = {"ner": "none", **settings}
    detector = PresidioDetector(PrivacySettings(**settings))  # type: ignore[arg-type]
    spans = detector.detect([text])[0]
    return [(s.entity, text[s.start : s.end]) for s in spans]


def _values(text: str, entity: str, **settings: object) -> set[str]:
    return {v for e, v in _found(text, **settings) if e == entity}


@pytest.fixture(scope="module")
def patterns() -> PresidioDetector:
    detector = PresidioDetector(PrivacySettings(ner="none", languages=ALL_LANGUAGES))
    detector.warm_up()
    return detector


def _persons(detector: PresidioDetector, text: str, language: str = "en") -> set[str]:
    spans = detector.detect([text], language)[0]
    return {text[s.start : s.end] for s in spans if s.entity == "PERSON"}


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("text", "language", "names"),
    [
        ("Mr John Smith met Ms Thornbury and Dr. A. Müller.", "en", {"John Smith", "Thornbury"}),
        ("Dr. A. Müller signed.", "en", {"A. Müller"}),
        ("M. Dupont et Mme Lefèvre sont arrivés.", "fr", {"Dupont", "Lefèvre"}),
        ("Herr Schmidt und Frau Weber kommen.", "de", {"Schmidt", "Weber"}),
        ("Herr Dr. Weller wird eingestellt.", "de", {"Weller"}),
        ("Sr. García y la Sra. Pérez.", "es", {"García", "Pérez"}),
        ("Il Sig. Rossi e la Sig.ra Bianchi.", "it", {"Rossi", "Bianchi"}),
    ],
)
def test_titles_give_the_name_without_the_title(patterns, text, language, names):
    assert _persons(patterns, text, language) >= names
    assert not any(
        n.startswith(("Mr", "Ms", "Dr", "M.", "Mme", "Herr", "Frau", "Sr"))
        for n in _persons(patterns, text, language)
    )


def test_roles_after_a_title_or_greeting_are_not_names(patterns):
    assert _persons(patterns, "Thank you, Mr President.\nDear Sir or Madam,\nHi Team,") == set()


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Dear Anna,\nthanks for the call.", "Anna"),
        ("Kind regards,\nJohn Smith\n", "John Smith"),
        ("Best regards,\r\nMargaret Thornbury", "Margaret Thornbury"),
        ("Name: Jane Doe\nTitle: CEO", "Jane Doe"),
        ("The lease was signed by Peter Parker on Monday.", "Peter Parker"),
        ("Employee: Oswin Pettigrew-Hale", "Oswin Pettigrew-Hale"),
        ("From: Anna Müller <anna@example.de>", "Anna Müller"),
        ("[09:03] Derek: rolling back now", "Derek"),
        ("Nom : DUPONT\nPrénom : Hilda", "DUPONT"),
        ("Name: Ann Lee Title: Chief Executive", "Ann Lee"),
    ],
)
def test_structure_finds_names(patterns, text, name):
    assert name in _persons(patterns, text)


def test_a_list_of_attendees_gives_each_name(patterns):
    found = _persons(patterns, "Attendees: Anna Müller (Chair), Dr Ben Okafor, Chloé Martin\n")
    assert found == {"Anna Müller", "Ben Okafor", "Chloé Martin"}


def test_csv_like_text_columns(patterns):
    text = (
        "employee_id,first_name,last_name,email,department\n"
        "E-1,Séverine,Quatrefages,sq@example.org,Finance\n"
        'E-2,Oswin,"Pettigrew-Hale",op@example.org,Legal\n'
    )
    spans = patterns.detect([text])[0]
    persons = {text[s.start : s.end] for s in spans if s.entity == "PERSON"}
    assert {"Séverine", "Quatrefages", "Oswin", "Pettigrew-Hale"} <= persons
    assert not {"E-1", "Finance", "Legal"} & persons


def test_places_from_letter_date_lines_and_city_columns(patterns):
    text = "München, 17. Februar 2023\n\nTotal, 12 items 2020\nname;city\nAnna Weber;Bautzen\n"
    spans = patterns.detect([text], "de")[0]
    places = {text[s.start : s.end] for s in spans if s.entity == "LOCATION"}
    assert places == {"München", "Bautzen"}


def test_prose_with_commas_is_not_a_table(patterns):
    text = "employee development, diversity and inclusion,\nwork/life/wellness programs, pay,\n"
    assert _persons(patterns, text) == set()


# --------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("Visit 221B Baker Street, London NW1 6XE today.", "221B Baker Street, London NW1 6XE"),
        (
            "Sent to 1600 Pennsylvania Avenue NW, Washington, DC 20500.",
            "1600 Pennsylvania Avenue NW, Washington, DC 20500",
        ),
        ("Siège : 12 rue de la Paix, 75002 Paris.", "12 rue de la Paix, 75002 Paris"),
        ("Anschrift: Hauptstraße 5, 10115 Berlin", "Hauptstraße 5, 10115 Berlin"),
        (
            "Wohnhaft Patrizia-Hänel-Weg 3-5\n95711 Mühldorf am Inn",
            "Patrizia-Hänel-Weg 3-5\n95711 Mühldorf am Inn",
        ),
        ("Vive en Calle Mayor 3, 28013 Madrid.", "Calle Mayor 3, 28013 Madrid"),
        ("Abita in Via Roma 10, 00184 Roma (RM).", "Via Roma 10, 00184 Roma (RM)"),
        ("Flat 7, Lewis Pines, North Norman, L9 2EN", "Flat 7, Lewis Pines, North Norman, L9 2EN"),
    ],
)
def test_street_addresses(patterns, text, address):
    spans = patterns.detect([text])[0]
    assert address in {text[s.start : s.end] for s in spans if s.entity == "ADDRESS"}


def test_numbered_headings_are_not_addresses(patterns):
    text = "5 Key Points\n49 U.S.C. Section 1154(b) applies. Chapter 2 Data Center"
    assert not [s for s in patterns.detect([text])[0] if s.entity == "ADDRESS"]


# --------------------------------------------------------------------------- patterns


def test_pattern_only_mode_finds_structured_values():
    text = (
        "Mail anna.mueller@example.de, IBAN DE89 3704 0044 0532 0130 00, "
        "card 4111 1111 1111 1111, call +44 20 7946 0958."
    )
    found = dict((e, v) for e, v in _found(text))
    assert found["EMAIL_ADDRESS"] == "anna.mueller@example.de"
    assert found["IBAN_CODE"] == "DE89 3704 0044 0532 0130 00"
    assert found["CREDIT_CARD"] == "4111 1111 1111 1111"
    assert found["PHONE_NUMBER"] == "+44 20 7946 0958"


def test_credit_cards_need_a_valid_luhn_checksum():
    assert _values("card 4111 1111 1111 1111", "CREDIT_CARD") == {"4111 1111 1111 1111"}
    assert _values("card 4111 1111 1111 1112", "CREDIT_CARD") == set()
    # Mastercard's 2-series, which Presidio's own pattern does not cover.
    assert _values("card 2223 0000 4841 0010", "CREDIT_CARD") == {"2223 0000 4841 0010"}
    assert _values("card 2223 0000 4841 0011", "CREDIT_CARD") == set()


def test_ip_addresses_but_not_section_or_version_numbers():
    text = (
        "See section 1.1.4.2 and 2.2.3.2.1; release 10.2.3.4 is out.\n"
        "Tactic 5.2.1.10. Pollution reduction\nThe server 192.168.10.4 refused 10.0.0.7."
    )
    assert _values(text, "IP_ADDRESS") == {"192.168.10.4", "10.0.0.7"}


def test_numbers_that_are_not_phone_numbers():
    text = (
        "Serial Number: 61-0163-083. On 03.06.2022 from 214.247.88.70, P. IVA 02662124481, "
        "lat 46.383333, id _01780502-bb4e-11ec, ZIP 88310-0690."
    )
    assert _values(text, "PHONE_NUMBER") == set()
    assert _values("Tel.: 06-64-45-48-96", "PHONE_NUMBER") == {"06-64-45-48-96"}
    assert _values("+44 20 7946 0321", "PHONE_NUMBER") == {"+44 20 7946 0321"}  # at the start


def test_ids_inside_longer_numbers_are_not_reported():
    # An 11-digit run inside an IBAN or after "+" is not a PESEL or an Italian VAT number.
    text = "IBAN FR580576 59070171196 53471788 or +34910383339"
    assert {e for e, _ in _found(text)} & {"PL_PESEL", "IT_VAT_CODE"} == set()


def test_email_detection_never_touches_the_network(monkeypatch):
    import tldextract.tldextract as tld

    assert os.environ["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] == ""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    # A fresh extractor, as in a new process: it must load the bundled suffix list.
    monkeypatch.setattr(tld, "TLD_EXTRACTOR", tld.TLDExtract())
    assert _values("write to margaret@example.co.uk", "EMAIL_ADDRESS") == {"margaret@example.co.uk"}
    assert attempts == []


# --------------------------------------------------------------------------- settings


def test_allow_deny_and_custom_lists():
    settings = {
        "allow_list": ("ACME Support",),
        "deny_list": (DenyTerm(value="Project Falcon", entity="CODENAME"),),
        "custom_recognizers": (
            CustomRecognizer(name="employee-id", entity="EMPLOYEE_ID", pattern=r"E-\d{5}"),
        ),
    }
    text = "Name: ACME Support\nName: Jane Doe\nproject falcon starts; ask E-12345."
    found = _found(text, **settings)
    assert ("PERSON", "Jane Doe") in found
    assert ("PERSON", "ACME Support") not in found
    # Deny-list and custom entities are reported though not in privacy.entities.
    assert ("CODENAME", "project falcon") in found
    assert ("EMPLOYEE_ID", "E-12345") in found


def test_entities_and_threshold_select_spans():
    text = "Mail anna@example.de or call +44 20 7946 0958."
    only_email = _found(text, entities=("EMAIL_ADDRESS",))
    assert only_email == [("EMAIL_ADDRESS", "anna@example.de")]
    # Phone numbers score 0.4 without context words, e-mails 1.0.
    assert {e for e, _ in _found("Reach +44 20 7946 0958", score_threshold=0.5)} == set()


def test_unknown_entity_names_the_setting():
    with pytest.raises(ConfigError, match=r"privacy\.entities.*NOT_AN_ENTITY"):
        _found("x", entities=("EMAIL_ADDRESS", "NOT_AN_ENTITY"))


def test_bad_spacy_model_path_names_the_setting(tmp_path):
    detector = PresidioDetector(PrivacySettings(ner_model=str(tmp_path / "missing")))
    with pytest.raises(ConfigError, match=r"privacy\.ner_model.*privacy\.ner = \"none\""):
        detector.warm_up()


def test_unknown_spacy_package_names_the_setting():
    detector = PresidioDetector(PrivacySettings(ner_model="xx_no_such_model_sm"))
    with pytest.raises(ConfigError, match=r"privacy\.ner_model.*xx_no_such_model_sm"):
        detector.warm_up()


def test_bad_transformers_model_names_the_setting(tmp_path):
    settings = PrivacySettings(ner="transformers", ner_model=str(tmp_path))
    with pytest.raises(ConfigError, match=r"privacy\.ner_model.*config\.json"):
        PresidioDetector(settings).warm_up()


def test_detector_pickles_without_its_models(patterns):
    clone = pickle.loads(pickle.dumps(patterns))
    assert clone._patterns == {}
    text = "Write to anna@example.de"
    assert clone.detect([text]) == patterns.detect([text])


# --------------------------------------------------------------------------- structured values


def test_structured_values_from_email_headers_and_tables():
    table = (
        "<table><tr><th>First name</th><th>Last name</th><th>E-mail</th><th>Téléphone</th>"
        "<th>Company name</th></tr>"
        "<tr><td>Séverine</td><td>Quatrefages</td><td>sq@example.org</td>"
        "<td>+33 1 99 00 12 34</td><td>Acme SA</td></tr></table>"
    )
    doc = ParsedDocument(
        path=Path("mail.eml"),
        elements=(
            Element(text="Hello", category="NarrativeText"),
            Element(text="...", category="Table", extra={"text_as_html": table}),
            Element(
                text="...",
                category="Table",
                extra={
                    "text_as_html": "<table><tr><td>Name</td><td>Oswin Pettigrew</td></tr></table>"
                },
            ),
        ),
        metadata={
            "sender": "Anna Müller <anna@example.de>",
            "to": ["Müller, Konstanze <km@example.de>", "bob@example.com"],
            "cc": [],
        },
    )
    values = structured_values(doc)
    assert ("Anna Müller", "PERSON") in values
    assert ("anna@example.de", "EMAIL_ADDRESS") in values
    assert ("Müller, Konstanze", "PERSON") in values
    assert ("bob@example.com", "EMAIL_ADDRESS") in values
    assert {("Séverine", "PERSON"), ("Quatrefages", "PERSON")} <= set(values)
    assert ("Séverine Quatrefages", "PERSON") in values
    assert ("sq@example.org", "EMAIL_ADDRESS") in values
    assert ("+33 1 99 00 12 34", "PHONE_NUMBER") in values
    assert ("Oswin Pettigrew", "PERSON") in values
    assert not any(v == "Acme SA" for v, _ in values)


def test_tables_without_personal_columns_give_nothing():
    table = "<table><tr><td>Year</td><td>Revenue</td></tr><tr><td>2024</td><td>12</td></tr></table>"
    doc = ParsedDocument(Path("r.csv"), (Element("...", "Table", extra={"text_as_html": table}),))
    assert structured_values(doc) == []


# --------------------------------------------------------------------------- NER filters


def test_common_word_phrases_and_place_names():
    assert is_common_phrase("Confidential Information")
    assert is_common_phrase("Party")
    assert is_common_phrase("Licensee")  # a contract role, however rare the word
    assert not is_common_phrase("AbbVie")
    assert not is_common_phrase("General Motors Corp")  # a legal form makes it a company
    assert not is_common_phrase("John Smith", "PERSON")
    assert is_place_name("the United States")
    assert is_place_name("Deutschland")
    assert is_place_name("the State of California")
    assert not is_place_name("Paris")


def test_keep_ner_span_rejects_what_is_not_name_shaped():
    assert not keep_ner_span("Bitte geben Sie Ihren Laptop", "PERSON", "de")
    assert not keep_ner_span("GA 14782", "ORGANIZATION")
    assert not keep_ner_span("UTC", "ORGANIZATION")
    assert not keep_ner_span("Delaware", "LOCATION")
    assert keep_ner_span("Ludwig van Beethoven", "PERSON")
    assert keep_ner_span("Bank of America", "ORGANIZATION")
    assert keep_ner_span("Santa Clara", "LOCATION")


def test_long_texts_are_cut_at_whitespace_with_offsets():
    text = "word " * 50
    pieces, owners = _split_long(["short", text], limit=32)
    assert owners[0] == 0 and set(owners[1:]) == {1}
    assert all(len(p) <= 32 for _, p in pieces)
    assert "".join(p for (_, p), o in zip(pieces, owners, strict=True) if o == 1) == text
    assert all(
        text[off : off + len(p)] == p for (off, p), o in zip(pieces, owners, strict=True) if o == 1
    )


# --------------------------------------------------------------------------- with the model


@pytest.fixture(scope="module")
def with_ner() -> PresidioDetector:
    detector = PresidioDetector(PrivacySettings())
    detector.warm_up()
    return detector


def _entities(detector: PresidioDetector, text: str) -> set[tuple[str, str]]:
    return {(s.entity, text[s.start : s.end]) for s in detector.detect([text])[0]}


@pytest.mark.slow
def test_ner_finds_people_organizations_and_places(with_ner):
    found = _entities(with_ner, "Margaret Thornbury joined AbbVie in Chicago last year.")
    assert ("PERSON", "Margaret Thornbury") in found
    assert ("ORGANIZATION", "AbbVie") in found
    assert ("LOCATION", "Chicago") in found


@pytest.mark.slow
def test_defined_terms_and_countries_are_not_reported(with_ner):
    text = (
        "The Party shall protect the Confidential Information of the Company and the "
        "Licensee. This Agreement is governed by the laws of Delaware, United States."
    )
    found = _entities(with_ner, text)
    assert not {e for e, _ in found} & {"ORGANIZATION", "PERSON", "LOCATION"}, found


@pytest.mark.slow
def test_batches_keep_their_order(with_ner):
    texts = ["Anna Müller called.", "Nothing here.", "Call Oswin Pettigrew-Hale."]
    spans = with_ner.detect(texts)
    assert [bool(s) for s in spans] == [True, False, True]
    assert all(isinstance(s, Span) and s.source for group in spans for s in group)


@pytest.mark.slow
def test_transformers_token_classifier(tmp_path):
    """A tiny untrained BERT built here (no download) that labels every token B-PER."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "john", "smith", "works", "in", "."]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    labels = ["O", "B-PER", "I-PER"]
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=16,
        max_position_embeddings=64,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    model = transformers.BertForTokenClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)

    detector = PresidioDetector(PrivacySettings(ner="transformers", ner_model=str(tmp_path)))
    text = "John Smith works in ."
    found = {(s.entity, text[s.start : s.end], s.source) for s in detector.detect([text])[0]}
    # PER maps to PERSON; lower-case words are not name-shaped and are dropped.
    assert found == {("PERSON", "John", "ner"), ("PERSON", "Smith", "ner")}
