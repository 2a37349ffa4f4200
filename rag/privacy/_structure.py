"""Personal data found from the shape of a document rather than by a model.

In running text: names after a title ("Ms Thornbury", "Frau Weber"), in salutations
("Dear Anna,"), under a closing ("Regards,\\nJohn Smith"), after a label ("Name: ...",
"Attendees: ...", "signed by ..."), before an address ("Anna Müller <anna@x.de>"), as a
chat speaker ("[09:03] Derek: ..."), and in the columns of CSV-like text whose header
says what they hold. These catch what a NER model misses in short, formulaic text:
letters, e-mails, forms, signature blocks, exports.

In document structure (:func:`structured_values`): e-mail headers and table columns
whose header says what they hold ("Name", "E-mail", "Téléphone", "Nachname"...).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from email.utils import getaddresses
from html.parser import HTMLParser
from typing import Any

import regex

from rag._types import ParsedDocument
from rag.privacy._detect import Span, is_common_phrase


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


#: One name word: capitalised, with inner apostrophes/hyphens ("O'Brien", "Jean-Baptiste").
_WORD = r"\p{Lu}[\p{L}'’]*\p{Ll}[\p{L}'’]*(?:-\p{Lu}[\p{L}'’]*\p{Ll}[\p{L}'’]*)?"
_INITIAL = r"\p{Lu}\."
_PARTICLE = r"(?:van|von|der|den|de|du|da|di|del|della|le|la|zu|ter|ten|dos|das|y|e|d'|O')"
#: A name: up to four words or initials on one line ("A. Müller", "Ludwig van Beethoven").
_NAME = (
    rf"(?:{_INITIAL}[ \t]?)*{_WORD}"
    rf"(?:[ \t]+(?:{_PARTICLE}[ \t]*)?(?:{_INITIAL}|{_WORD})){{0,3}}"
)
#: After a label, a surname may be in capitals ("Nom : DUPONT", "SHORT/WENDY").
_CAPS = r"\p{Lu}{2,}(?:['’-]\p{Lu}+)*"
_LABEL_VALUE = (
    rf"(?:{_CAPS}(?:/{_CAPS}|(?:[ \t]+(?:{_CAPS}|{_WORD})){{0,2}})(?![\p{{L}}])"
    rf"|(?:(?:de la|de|del|van der|van|von|di|da|le|la|du)[ \t]+)?{_NAME})"
)
_TITLES = {
    "en": "Mr Mrs Ms Miss Mx Dr Prof Sir Dame Rev Lord Lady",
    "fr": "M MM Mme Mmes Mlle Mlles Me Maître Dr Pr Monsieur Madame Mademoiselle",
    "de": "Herr Herrn Frau Hr Fr Dr Prof",
    "es": "Sr Sra Srta Don Doña Dña Dr Dra",
    "it": "Sig Sig.ra Sig.na Sigg Dott Dott.ssa Dr Prof Prof.ssa Avv Ing",
}
_SALUTATIONS = {
    "en": "Dear|Hi|Hello|Hey",
    "fr": "Cher|Chère|Bonjour|Bonsoir|Salut",
    "de": "Liebe|Lieber|Hallo|Guten Tag|Sehr geehrte|Sehr geehrter",
    "es": "Estimado|Estimada|Querido|Querida|Hola",
    "it": "Caro|Cara|Gentile|Gentilissimo|Gentilissima|Egregio|Salve|Ciao",
}
_CLOSINGS = {
    "en": "regards|best regards|kind regards|warm regards|many thanks|thanks|thank you|"
    "cheers|sincerely|yours sincerely|yours faithfully|yours truly|best wishes|best",
    "fr": "cordialement|bien cordialement|bien à vous|salutations|sincères salutations|amitiés",
    "de": "mit freundlichen grüßen|mit freundlichen grüssen|freundliche grüße|viele grüße|"
    "beste grüße|liebe grüße|grüße|gruß",
    "es": "saludos|saludos cordiales|un saludo|atentamente|cordialmente|un abrazo",
    "it": "cordiali saluti|distinti saluti|saluti|cordialmente|un saluto|a presto",
}
#: Labels followed by a colon and one or more names (a comma list: "Attendees: A, B").
_LABELS = {
    "en": "name|full name|first name|last name|given name|surname|legal name|preferred name|"
    "employee|employee name|contact|contact person|emergency contact|patient|client|customer|"
    "author|manager|supervisor|requester|requestor|passenger|traveller|traveler|guest|"
    "cardholder|card holder|account holder|beneficiary|payee|claimant|witness|tenant|"
    "spouse|child|dependent|dependant|next of kin|bill to|ship to|approved|"
    "attendees|participants|present|apologies|prepared by|approved by|reviewed by|"
    "submitted by|reported by|checked by|signed by|witnessed by|processed by|attn|attention",
    "fr": "nom|prénom|nom complet|nom et prénom|interlocuteur|contact|salarié|employé|"
    "responsable|titulaire|bénéficiaire|présents|participants|excusés|excusé|excusée|"
    "excusé\\(e\\)|signé par|déclaré par|signataire|à l'attention de",
    "de": "name|vorname|nachname|familienname|ansprechpartner|ansprechpartnerin|"
    "mitarbeiter|mitarbeiterin|mitarbeiter/in|führungskraft|kontoinhaber|teilnehmende|"
    "teilnehmer|entschuldigt|gemeldet von|unterzeichnet von|gezeichnet|z\\. ?hd\\.?",
    "es": "nombre|apellido|apellidos|nombre completo|contacto|empleado|empleada|"
    "trabajador|trabajadora|trabajador/a|titular|asistentes|excusa su asistencia|recibí|"
    "firmado por|notificada por|notificado por|a la atención de",
    "it": "nome|cognome|nome e cognome|referente|contatto|dipendente|responsabile|titolare|"
    "presenti|assenti|segnalato da|firmato da|alla cortese attenzione di|c\\.a\\.",
}
#: Formulas followed by a name without a colon ("Je soussigné(e), ...", "signed by ...").
_FREE_LABELS = (
    r"(?i:(?:signed|reported|approved|prepared|checked|witnessed|submitted|processed) by|"
    r"signé par|"
    r"soussignée?s?(?:\(e\))?|sottoscritt[oa](?:/a)?|unterzeichnet von|firmado por|firmato da)"
)
#: Words after a title or greeting that are not names ("Dear Sir", "Mr President").
_NOT_NAMES = _word_set(
    "all team everyone everybody colleagues colleague sir sirs madam madame friends friend "
    "there folks customer customers client clients member members partner partners user "
    "users world guys both group board committee reader readers applicant candidate valued "
    "president chairman chairwoman chair speaker secretary justice director minister mayor "
    "ambassador governor senator commissioner chancellor präsident präsidentin kollegen "
    "kolleginnen damen herren collègues président présidente todos todas colegas presidente "
    "tutti colleghi signori signore yes no none n/a na tbd unknown oui non ja nein sí si "
    "nessuno ninguno aucun keine the"
)
_ALL_TITLES = frozenset(t.casefold().rstrip(".") for v in _TITLES.values() for t in v.split())
_SCORES = {"title": 0.85, "salutation": 0.7, "closing": 0.6, "label": 0.7, "mailbox": 0.8}
_SCORES["chat"] = 0.7
_MAILBOX = regex.compile(rf"(?<![\p{{L}}])(?P<n>{_NAME})[ \t]*<[^<>\s@]+@[^<>\s]+>")
_CHAT = regex.compile(
    rf"(?m)^[ \t]*\[?\d{{1,2}}:\d{{2}}(?::\d{{2}})?\]?[ \t]*(?:-[ \t]*)?(?P<n>{_NAME})[ \t]*:"
)
#: Labels followed by a list of names rather than one.
_LIST_LABEL = regex.compile(
    r"(?i)attendees|participants|present|apologies|cc|présents|excusé|teilnehmende|teilnehmer|"
    r"entschuldigt|asistentes|asistencia|presenti|assenti"
)
#: A list item that starts with a name: "- Chevallier : confirmer", "• Jade Poole – HR".
_BULLET = regex.compile(rf"(?m)^[ \t]*[-•*▪][ \t]+(?P<n>{_NAME})[ \t]*(?::|[–—-][ \t])")
_MONTHS = (
    "january february march april may june july august september october november december "
    "janvier février mars avril mai juin juillet août septembre octobre novembre décembre "
    "januar februar märz april mai juni juli august september oktober november dezember "
    "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre "
    "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre"
)
_MONTH = "(?i:" + "|".join(sorted(set(_MONTHS.split()), key=len, reverse=True)) + ")"
#: The place of a letter's date line: "München, 17. Februar 2023", "En León, a 13/09/2024".
_DATELINE = regex.compile(
    r"(?m)^[ \t]*(?:En |In |À |A )?(?P<n>\p{Lu}[\p{L}'’-]+(?:[ \t]+\p{Lu}[\p{L}'’-]+){0,2}),"
    rf"[ \t]+(?:le |den |am |a |il |el )?(?:\d{{1,2}}(?:\.|er|º)?[ \t]+(?:de[ \t]+)?{_MONTH}"
    r"(?:[ \t]+de)?[ \t]+\d{4}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}-\d{2}-\d{2}"
    rf"|{_MONTH}[ \t]+\d{{1,2}},[ \t]+\d{{4}})"
)
_CSV_DELIMITERS = (";", "\t", "|", ",")


def _alternation(items: Iterable[str]) -> str:
    ordered = sorted(set(items), key=len, reverse=True)
    return "|".join(ordered)


class TextStructure:
    """Names from titles, greetings, closings, labels, mailboxes, chats; CSV-like columns."""

    def __init__(self, languages: Sequence[str], entities: Iterable[str]) -> None:
        langs = [lang for lang in languages if lang in _TITLES]
        self.entities = frozenset(entities)
        self._person: list[tuple[str, Any]] = []
        self._dateline = _DATELINE if "LOCATION" in self.entities else None
        if "PERSON" in self.entities and langs:
            titles = _alternation(regex.escape(t) for lang in langs for t in _TITLES[lang].split())
            greetings = _alternation(g for lang in langs for g in _SALUTATIONS[lang].split("|"))
            closings = _alternation(c for lang in langs for c in _CLOSINGS[lang].split("|"))
            labels = _alternation(x for lang in langs for x in _LABELS[lang].split("|"))
            title = rf"(?:(?:{titles})\.?[ \t]+)"
            self._person = [
                (
                    "title",
                    regex.compile(
                        rf"(?<![\p{{L}}.])(?:{titles})\.?(?:[ \t]+(?:{titles})\.?)*"
                        r"(?:[ \t]+|[ \t]*\r?\n[ \t]*)"
                        rf"(?P<n>{_CAPS}(?:[ \t]+{_WORD})?(?![\p{{L}}])|{_NAME})"
                    ),
                ),
                (
                    "salutation",
                    regex.compile(
                        rf"(?m)^[ \t]*(?:{greetings})[ \t]*,?[ \t]+{title}?(?P<n>{_NAME})"
                        r"[ \t]*(?:[,!:;]|$)"
                    ),
                ),
                (
                    "closing",
                    regex.compile(
                        rf"(?m)^[ \t]*(?i:{closings}|--)[ \t]*[,!.]?[ \t]*\r?\n"
                        rf"[ \t]*(?P<n>{_NAME})[ \t]*,?[ \t]*$"
                    ),
                ),
                (
                    "label",
                    regex.compile(
                        rf"(?<![\p{{L}}])(?:(?i:{labels})[ \t]*[:：]|{_FREE_LABELS}[ \t]*,?)"
                        rf"[ \t]*(?:\r?\n[ \t]*)?{title}?"
                        r"(?=\p{Lu}|(?:de|del|van|von|di|da|le|la|du)[ \t])"
                    ),
                ),
                ("mailbox", _MAILBOX),
                ("chat", _CHAT),
                ("chat", _BULLET),
            ]
            # One item of a list of names after a label: "A (Chair), Dr B, C and D".
            self._item = regex.compile(
                rf"[ \t]*(?:[,;]|\band\b|\bet\b|\bund\b|\by\b|\be\b)?[ \t]*{title}?"
                rf"(?P<n>{_LABEL_VALUE})[ \t]*(?:\([^()\n]{{0,40}}\))?"
            )

    def find(self, text: str, language: str = "en") -> list[Span]:
        out: list[Span] = []
        for kind, pattern in self._person:
            source = "honorific" if kind == "title" else "structure"
            for m in pattern.finditer(text):
                if kind == "label":
                    many = _LIST_LABEL.search(m.group()) is not None
                    names: Iterable[tuple[int, int]] = self._list_after(text, m.end(), many)
                else:
                    names = [m.span("n")]
                for start, end in names:
                    end = _before_next_label(text, start, end)
                    if _plausible_name(text[start:end], kind, language):
                        out.append(Span(start, end, "PERSON", _SCORES[kind], source))
        if self._dateline is not None:
            for m in self._dateline.finditer(text):
                start, end = m.span("n")
                out.append(Span(start, end, "LOCATION", 0.6, "structure"))
        if any(d in text for d in _CSV_DELIMITERS[:3]) or text.count(",") >= 2:
            out.extend(self._columns(text))
        return out

    def _list_after(self, text: str, pos: int, many: bool) -> Iterator[tuple[int, int]]:
        """The name after a label, or the list after "Attendees:" ("A (Chair), Dr B, C")."""
        line_end = text.find("\n", pos)
        line_end = len(text) if line_end < 0 else line_end
        for _ in range(12):
            m = self._item.match(text, pos, line_end)
            if m is None or m.end() == pos:
                return
            value = m.group("n")
            start = m.start("n")
            for part in value.split("/") if "/" in value else (value,):
                yield start, start + len(part)
                start += len(part) + 1
            pos = m.end()
            if not many or not regex.match(
                r"[ \t]*(?:[,;]|and |et |und |y |e )", text[pos:line_end]
            ):
                return

    def _columns(self, text: str) -> Iterator[Span]:
        """Cells of CSV-like lines under a header that names their content."""
        lines = text.split("\n")
        offsets = [0]
        for line in lines[:-1]:
            offsets.append(offsets[-1] + len(line) + 1)
        i = 0
        while i < len(lines):
            found = _csv_header(lines[i])
            if found is None:
                i += 1
                continue
            delimiter, columns = found
            columns = {c: e for c, e in columns.items() if e in self.entities}
            width = len(_cells(lines[i], delimiter))
            i += 1
            while i < len(lines) and len(cells := _cells(lines[i], delimiter)) == width:
                for c, (start, end) in enumerate(cells):
                    value = lines[i][start:end]
                    if c in columns and _plausible_cell(value, columns[c]):
                        at = offsets[i] + start
                        yield Span(at, at + len(value), columns[c], 0.7, "structure")
                i += 1


def _cells(line: str, delimiter: str) -> list[tuple[int, int]]:
    """(start, end) of each cell's value, quotes and padding excluded ("Smith, Anna")."""
    cells: list[tuple[int, int]] = []
    i, n = 0, len(line)
    while i <= n:
        while i < n and line[i] in " \t" and line[i] != delimiter:
            i += 1
        if i < n and line[i] == '"':
            close = line.find('"', i + 1)
            close = n if close < 0 else close
            cells.append((i + 1, close))
            nxt = line.find(delimiter, close)
        else:
            nxt = line.find(delimiter, i)
            end = n if nxt < 0 else nxt
            cells.append((i, len(line[:end].rstrip())))
        if nxt < 0:
            break
        i = nxt + 1
    return cells


def _csv_header(line: str) -> tuple[str, dict[int, str]] | None:
    for delimiter in _CSV_DELIMITERS:
        if line.count(delimiter) < (2 if delimiter == "," else 1):
            continue
        cells = line.split(delimiter)
        # Prose with commas is not a header: empty or long cells, a space after each comma.
        if any(not c.strip() or len(c.split()) > 3 for c in cells):
            return None
        if delimiter == "," and all(c[:1].isspace() for c in cells[1:]):
            return None
        columns = {i: e for i, c in enumerate(cells) if (e := _column_entity(c))}
        return (delimiter, columns) if columns else None
    return None


def _before_next_label(text: str, start: int, end: int) -> int:
    """Flattened forms run fields together: "Name: Ann Lee Title: CEO" -> "Ann Lee"."""
    if regex.match(r"[ \t]*:", text[end : end + 3]):
        cut = text.rfind(" ", start, end)
        return len(text[:cut].rstrip()) if cut > start else end
    return end


def _plausible_name(name: str, kind: str, language: str) -> bool:
    words = name.split()
    first = words[0].casefold().rstrip(".") if words else ""
    if len(name) < 2 or first in _NOT_NAMES or first in _ALL_TITLES:
        return False
    # A title is evidence enough; elsewhere a "name" made of common English words is a
    # heading or a role ("Manager: Finance", "Attn: General Counsel"), by the stricter
    # ORGANIZATION rule. Only English: a name is a common word in its own language
    # ("Pierre", "Gentili", "Weber").
    return kind == "title" or not is_common_phrase(name, "ORGANIZATION", "en")


# --------------------------------------------------------------------------- documents

#: Table header words (accents removed, case-folded) -> entity of the column's cells.
_COLUMN_WORDS = (
    ("EMAIL_ADDRESS", "email e-mail mail courriel correo posta pec"),
    ("IBAN_CODE", "iban"),
    ("IP_ADDRESS", "ip"),
    (
        "PHONE_NUMBER",
        "phone telephone tel mobile cell fax telefon telefono handy portable movil cellulare",
    ),
    ("ADDRESS", "address adresse anschrift direccion domicilio indirizzo street strasse rue"),
    (
        "PERSON",
        "name names surname forename fullname employee contact person nom "
        "prenom vorname nachname familienname apellido apellidos nombre cognome nome "
        "mitarbeiter empleado dipendente salarie employe author signatory ansprechpartner "
        "referente interlocuteur manager supervisor assignee approver reviewer requester "
        "reporter responsable",
    ),
    ("LOCATION", "city town location ville ort stadt standort ciudad localidad citta localita"),
)
_FIRST_NAME_WORDS = _word_set("first given forename prenom vorname nombre nome")
_ONE_ADDRESS = regex.compile(r'^\s*"?(?P<name>[^"<>@]*?)"?\s*<(?P<addr>[^<>]+@[^<>]+)>\s*$')
_PARENTHESES = regex.compile(r"\([^)]*\)")
#: A "name" column about something else: "Company name", "File name", "Nom du produit".
_NOT_PERSON_COLUMNS = _word_set(
    "company firm organization organisation entreprise societe firma empresa azienda "
    "product produit produkt producto prodotto file fichier datei project projet projekt "
    "device host server domain user username login account brand marque item article "
    "category type field table column id number no nr num code date"
)


def structured_values(doc: ParsedDocument) -> list[tuple[str, str]]:
    """(value, entity) pairs known to be personal data from the document's structure:
    e-mail headers (``sender``, ``to``, ``cc``, ``bcc``) and table columns or label rows
    named like name / e-mail / phone / address / IBAN, in en, fr, de, es, it."""
    found: list[tuple[str, str]] = []
    for key in ("sender", "to", "cc", "bcc"):
        raw = doc.metadata.get(key)
        for value in [raw] if isinstance(raw, str) else list(raw or ()):
            for name, address in _addresses(str(value)):
                name = " ".join(_PARENTHESES.sub(" ", name).split()).strip("\"' ")
                if name and "@" not in name and any(c.isalpha() for c in name):
                    found.append((name, "PERSON"))
                if "@" in address:
                    found.append((address.strip(), "EMAIL_ADDRESS"))
    for element in doc.elements:
        html = element.extra.get("text_as_html") if element.category == "Table" else None
        if html:
            found.extend(_table_values(_table_rows(str(html))))
    return list(dict.fromkeys(found))


def _addresses(value: str) -> list[tuple[str, str]]:
    # "Müller, Anna <anna@x.de>": one address whose unquoted name holds a comma, which
    # getaddresses would split into two.
    m = _ONE_ADDRESS.match(value)
    return [(m["name"], m["addr"])] if m else getaddresses([value])


def _header_words(header: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", header.casefold())
    folded = "".join(c if c.isalnum() else " " for c in folded if not unicodedata.combining(c))
    return folded.replace("e mail", "email").split()


def _column_entity(header: str) -> str | None:
    words = _header_words(header)
    if not words or len(words) > 4:
        return None
    for entity, names in _COLUMN_WORDS:
        if any(w in names.split() for w in words):
            if entity == "PERSON" and _NOT_PERSON_COLUMNS.intersection(words):
                return None
            return entity
    return None


def _table_values(rows: list[list[str]]) -> Iterable[tuple[str, str]]:
    # The header is the first row with two cells (a merged title row may come before).
    h = next((i for i, row in enumerate(rows) if sum(1 for c in row if c) >= 2), None)
    if h is None:
        return
    header = rows[h]
    columns = {i: e for i, cell in enumerate(header) if (e := _column_entity(cell))}
    first = next((i for i, e in columns.items() if e == "PERSON" and _is_first(header[i])), None)
    last = next((i for i, e in columns.items() if e == "PERSON" and i != first), None)
    for row in rows[h + 1 :]:
        for i, entity in columns.items():
            if i < len(row) and _plausible_cell(row[i], entity):
                yield row[i], entity
        if first is not None and last is not None and max(first, last) < len(row):
            full = f"{row[first]} {row[last]}".strip()
            if _plausible_cell(full, "PERSON"):
                yield full, "PERSON"
    for row in rows:  # label rows: "Name | Anna Müller"
        label = _column_entity(row[0]) if len(row) >= 2 else None
        if label and not _column_entity(row[1]) and _plausible_cell(row[1], label):
            yield row[1], label


def _is_first(header: str) -> bool:
    return not _FIRST_NAME_WORDS.isdisjoint(_header_words(header))


def _plausible_cell(value: str, entity: str) -> bool:
    if not value or len(value) > 200:
        return False
    if entity in ("PERSON", "ADDRESS", "LOCATION"):
        most = 20 if entity == "ADDRESS" else 6
        return any(c.isalpha() for c in value) and len(value.split()) <= most
    if entity in ("PHONE_NUMBER", "IBAN_CODE", "IP_ADDRESS"):
        return sum(c.isdigit() for c in value) >= 4
    return "@" in value if entity == "EMAIL_ADDRESS" else True


class _Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            if not self.rows:
                self.rows.append([])
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _table_rows(html: str) -> list[list[str]]:
    parser = _Rows()
    parser.feed(html)
    parser.close()
    return [row for row in parser.rows if any(row)]
