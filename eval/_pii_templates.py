"""Document templates of :mod:`eval.synthetic_pii` (data, kept apart from the code).

Placeholders: {A}..{E} people ({A} full name, .first .last .FIRST .LAST .lf .hon .HON
.role .email .phone .addr .addrml); labelled values {org} {city} {addr} {addrml} {phone}
{iban} {card} {ip} {ssn} {nif} {nie} {cf}; unlabelled {date} {isodate} {time} {amount}
{ref} {version} {section} {product} {dept} {close} {n}. A trailing digit ({org2}) is a
second value of that kind; the same placeholder repeats the same value. A template's
first line is its kind; a backslash at a line end joins a paragraph's source lines.
"""

_EN = (
    """email
From: {A} <{A.email}>
To: {B} <{B.email}>
Cc: {C} <{C.email}>
Date: {date}
Subject: {product} rollout – {ref}

Hi {B.first},

Following Tuesday's steering call, {C.hon} {C.last} agreed that the {product} upgrade to \
{version} can go live on {date2}. Please ask the {dept} team to freeze changes under \
section {section} of the runbook.

{C.last}'s team will cover the weekend support rota.

{close},
{A}
{A.role}
{org}
T: {A.phone}""",
    """hr_letter
{org}
{addrml}

{date}

Private & Confidential
{A.hon} {A}
{A.addrml}

Dear {A.hon} {A.last},

Offer of employment – {A.role}

We are pleased to offer you the position of {A.role} in our {dept} department, starting \
on {date2}. Your annual base salary will be {amount}, paid monthly by bank transfer.

Please return the signed copy to {B} ({B.email}) by {date2}. {B.first} will also \
arrange your equipment and building pass.

Yours sincerely,

{B}
{B.role}""",
    """performance_review
PERFORMANCE REVIEW {ref}
Employee: {A}
Manager: {B.hon} {B.last}
Review period: {date} – {date2}

Summary
{A.first} exceeded the targets set for the {product} migration and led the {dept} \
workstream after {C} moved to the {city} office. {A.last}'s documentation of release \
{version} is now the team standard.

Development areas
Delegation. {B.last} suggests that {A.first} pairs with {C.first} on the next audit \
(see section {section}).

Rating: 4 – Exceeds expectations""",
    """contract_preamble
SERVICES AGREEMENT

This Services Agreement (the "Agreement") is made on {date}

BETWEEN

(1) {org}, whose registered office is at {addr} (the "Customer"); and

(2) {org2}, whose principal place of business is at {addr2} (the "Supplier").

WHEREAS the Customer wishes to procure the Services described in Schedule 1 for the \
{product} programme, and the Supplier's representative, {A}, has confirmed that the \
Supplier can deliver them from the Effective Date. Notices to the Supplier shall be sent \
to {A.email}; Confidential Information is defined in clause {section}. {A.last} will act \
as account manager.""",
    """signature_page
IN WITNESS WHEREOF the parties have executed this Agreement on the \
Effective Date.

SIGNED for and on behalf of {org}
Signature: ______________________
Name: {A}
Title: {A.role}
Date: {date}

SIGNED for and on behalf of {org2}
Signature: ______________________
Name: {B.hon} {B}
Title: {B.role}
Date: {date}

Witnessed by: {C} ({C.addr})""",
    """meeting_minutes
Minutes – {dept} Steering Committee
Date: {date}, {time}, Room 4.12 / Teams
Attendees: {A} (Chair), {B}, {C.hon} {C}, {D}
Apologies: {E}

1. Minutes of the previous meeting
Approved without changes.

2. {product} release {version}
{B.last} reported that 14 of 16 test cases pass. {C.last} raised the open finding in \
section {section} of the security review; {A.first} asked for a fix before {date2}.

3. Budget
Spend to date is {amount} against a budget of {amount2}.

Actions
- {B.first}: circulate the test report ({ref}).
- {D.last}: confirm vendor support hours with {org}.
Next meeting: {date2}.""",
    """incident_report
SECURITY INCIDENT REPORT {ref}
Severity: High        Status: Contained
Reported by: {A} ({A.email}, ext. 4471)
Detected: {date} {time} UTC

Summary
Repeated failed logins against the {product} admin console originated from {ip}. The \
account of {B} was locked after 12 attempts; a successful session from {ip2} followed.

Actions taken
{A.last} reset {B.last}'s credentials and disabled legacy authentication per section \
{section} of the Access Control Standard. {C.hon} {C.last} ({dept}) confirmed that no \
customer data was exported.""",
    """invoice
INVOICE {ref}
Invoice date: {date}    Due: {date2}

From: {org}
{addrml}
VAT no. GB 862 4417 09

Bill to:
{A}
{A.addrml}

Description                              Qty    Amount
{product} licence ({version})             12    {amount}
Implementation support, section {section}  1    {amount2}

Please pay by bank transfer to IBAN {iban} quoting {ref}.
Queries: {B} – {B.email} – {B.phone}""",
    """csv_export
employee_id,first_name,last_name,email,phone,department,location
E-{n1},{A.first},{A.last},{A.email},{A.phone},{dept},{city}
E-{n2},{B.first},{B.last},{B.email},{B.phone},Finance,{city}
E-{n3},{C.first},{C.last},{C.email},{C.phone},Legal & Compliance,{city2}
E-{n4},{D.first},{D.last},{D.email},{D.phone},{dept},{city2}""",
    """chat_transcript
#{dept} channel – exported {date}
[09:02] {A}: morning all, the {product} nightly job failed again
[09:03] {B.first}: seen it – it's the {version} config, rolling back now
[09:05] {A.first}: thanks. can you ping {C.first} so {C.last} knows before the 10:00 \
with {org}?
[09:06] {B.first}: done. also the vpn gateway {ip} is flapping
[09:11] {C}: on it. {B.first}, can you open a ticket ({ref})?
[09:12] {B.first}: ok, raised""",
    """payroll_form
NEW HIRE FORM – PAYROLL
Legal name: {A.lf}
Preferred name: {A.first}
SSN: {ssn}
Home address: {A.addr}
Mobile: {A.phone}
Personal e-mail: {A.email}
Direct deposit: routing 0{n1}{n2}, account ending {n3}
Start date: {date}   Department: {dept}   Manager: {B}
Emergency contact: {C} ({C.phone})
Checked by {B.first} on {date2}.""",
    """access_request
IT Service Desk – Access request {ref}
Requester: {A} <{A.email}>
System: {product} ({version})
Source address: {ip}
Justification: {A.first} needs read access to the {dept} share to prepare the quarterly \
close.

Approval
Approved by {B.hon} {B.last} on {date}. Access expires {date2} unless renewed under \
policy section {section}.""",
    """customer_email
Subject: Double charge on my account ({ref})

Dear Customer Services,

My name is {A} and I have been a customer of {org} since 2019. On {date} my card {card} \
was charged {amount} twice for the same order.

Please refund the duplicate payment to my account {iban} or call me on {A.phone}. My \
postal address is {A.addr}.

Kind regards,
{A}

[Case note] {B} called {A.hon} {A.last} back on {date2}; refund approved.""",
    """travel_booking
BOOKING CONFIRMATION – {ref}
Passenger: {A.LAST}/{A.FIRST} {A.HON}
Flight: LH{n1}  {city} – {city2}  {date} {time}
Seat 14C   Fare: {amount}
Payment: card {card}
Booked by: {B} for the {dept} team
Contact: {A.phone}, {A.email}
Hotel: {org}, {addr}""",
    """reference_letter
{date}

To whom it may concern,

I am writing to recommend {A}, who worked in my {dept} team at {org} from 2019 to 2024. \
{A.first} managed the rollout of {product} across {n1} sites and was the first point of \
contact for our auditors.

{A.last} is meticulous, calm under pressure and well liked by colleagues. I would not \
hesitate to hire {A.first} again.

Please contact me at {B.email} or {B.phone} if you need more information.

{close},
{B.hon} {B}
{B.role}""",
    """press_release
PRESS RELEASE – FOR IMMEDIATE RELEASE
{city}, {date}

{org} launches {product} {version}

{org} today announced general availability of {product} {version}, which adds the audit \
trails required under section {section} of the Data Processing Addendum.

"Customers asked for stronger controls," said {A}, {A.role} at {org}. "This release \
delivers them." {A.last} added that pricing is unchanged.

Media contact: {B}, {B.email}""",
    """expense_claim
EXPENSE CLAIM {ref}
Claimant: {A.lf}          Cost centre: {n1}-{n2}
Trip: {city} client workshop, {date} – {date2}
Corporate card: {card}

Date        Item                      Amount
{date}      Rail fare                 {amount}
{date2}     Hotel, {addr}             {amount2}

Declaration: I confirm these expenses were incurred on company business. – {A.first}
Approved: {B.last} ({B.role}), {date2}""",
    """audit_report
Report {ref} – Review of Vendor Payment Controls

3.1 Scope
We examined {n1} vendor payments made between {date} and {date2}, the {product} approval \
workflow and section {section} of the Finance Manual.

3.2 Findings
Finding 1. Two payments totalling {amount} were released without a second approver. The \
{dept} manager, {A}, stated that release {version} allowed self-approval. {A.last} has \
since requested a configuration change.

Finding 2. The vendor master file held a bank account ({iban}) changed by e-mail request \
from {B.email} without call-back verification.

Management response: accepted ({B.hon} {B.last}, {B.role}).""",
    """auth_log
# auth.log excerpt – exported for {ref}
{isodate}T08:14:22Z sshd[4121]: Accepted publickey for svc-backup from {ip} port 52114
{isodate}T08:15:03Z portal[977]: login ok user={A.email} src={ip2} agent={version}
{isodate}T08:15:09Z portal[977]: export started user={A.email} rows=1840
{isodate}T08:21:47Z portal[977]: login failed user={B.email} src={ip} reason=bad_password
{isodate}T08:22:10Z portal[977]: account locked user={B.email} policy={section}""",
    """directory
{dept} – team directory (updated {date})

Head of department: {A}, {A.role} – {A.phone}
Deputy: {B.lf} – {B.email}
Team
• {C} – {C.role} – {C.email}
• {D} – {D.role} – {D.phone}
• {E.hon} {E} – contractor until {date2}
Out of office: {C.first} until {date2}; please contact {D.first} instead.""",
    """file_note
File note – {ref}
Subject: Return-to-work meeting, {A}
Present: {A.first}, {B} (line manager), {C} (HR Business Partner)

{A.hon} {A.last} returned on {date} after 9 days of absence. Adjustments agreed: no night \
shifts until {date2}, a phased return and a follow-up with occupational health.

{B.last} will review progress weekly. {C.first} to update the absence record in {product}.""",
    """benefits_enrollment
BENEFITS ENROLLMENT – PLAN YEAR 2025
Employee: {A}    SSN: {ssn}
Date of birth: {date}    Employee ID: E-{n1}
Home address: {A.addr}

Dependents
Spouse: {B}    SSN: {ssn2}
Child: {C}    SSN: {ssn3}

Plan: {product} PPO, family tier    Monthly premium: {amount}
Beneficiary for life insurance: {B.first} ({B.phone})

I certify that the information above is correct. – {A.first}, {date2}
Processed by {D} ({dept}), case {ref}.""",
    """fraud_case
FRAUD CASE {ref} – card-not-present disputes
Cardholder: {A}
Card: {card}    Replacement card: {card2}
Billing address: {A.addr}

Timeline
{isodate} 02:14 UTC – three purchases of {amount} each from {ip}, none matching the \
cardholder's usual devices.
{isodate} 08:40 UTC – {A.hon} {A.last} called the hotline from {A.phone} to report them.
{isodate} 09:05 UTC – {B} blocked the card and issued the replacement.

Note for the {dept} team: the same IP address was used against card {card3} on a \
different account; see section {section} of the chargeback procedure.""",
    """payroll_export
emp_id,name,ssn,location,manager
{n1},"{A.lf}",{ssn},{city},{E}
{n2},"{B.lf}",{ssn2},{city},{E}
{n3},"{C.lf}",{ssn3},{city2},{E}
{n4},"{D.lf}",{ssn4},{city2},{E}""",
)

_FR = (
    """email
De : {A} <{A.email}>
À : {B} <{B.email}>
Cc : {C} <{C.email}>
Date : {date}
Objet : Mise en production {product} – {ref}

Bonjour {B.first},

Suite à notre échange, {C.hon} {C.last} valide la mise en production de la version \
{version} le {date2}. Merci de prévenir l'équipe {dept} et de geler les évolutions \
prévues à l'article {section}.

L'équipe de {C.last} assurera l'astreinte du week-end.

{close},
{A}
{A.role}
{org}
Tél. : {A.phone}""",
    """hr_letter
{org}
{addrml}

{city}, le {date}

ATTESTATION D'EMPLOI

Je soussigné(e), {A}, {A.role} de la société {org}, certifie que {B.hon} {B.LAST} \
{B.first}, demeurant {B.addr}, est employé(e) au sein du service {dept} depuis le \
{date2} en qualité de {B.role}.

{B.hon} {B.last} perçoit une rémunération brute annuelle de {amount}, versée sur le \
compte {iban}.

Attestation délivrée pour servir et valoir ce que de droit.

{A}""",
    """meeting_minutes
Compte rendu – Comité de pilotage {product}
Date : {date}, {time}
Présents : {A} (présidence), {B.hon} {B.last}, {C}, {D}
Excusé(e) : {E}

1. Avancement
{B.last} indique que 14 cas de test sur 16 sont validés. {C.first} signale un point \
ouvert (article {section} de la revue de sécurité).

2. Budget
Dépenses à date : {amount} pour un budget de {amount2}.

Actions
- {D.last} : confirmer les horaires de support avec {org} avant le {date2}.
- {A.first} : diffuser le rapport {ref}.""",
    """contract_preamble
CONTRAT DE PRESTATION DE SERVICES

ENTRE LES SOUSSIGNÉS :

La société {org}, dont le siège social est situé {addr}, représentée par {A.hon} {A}, \
en sa qualité de {A.role},
ci-après dénommée « le Client »,

ET

La société {org2}, dont le siège social est situé {addr2}, représentée par {B.hon} {B},
ci-après dénommée « le Prestataire ».

IL A ÉTÉ CONVENU CE QUI SUIT :
Article 1 – Objet. Le Prestataire assure la maintenance de la solution {product} \
({version}). Toute notification est adressée à {B.email}.
Article 2 – Interlocuteurs. {A.hon} {A.last} pour le Client et {B.hon} {B.last} pour le \
Prestataire suivent l'exécution du contrat.""",
    """incident_report
RAPPORT D'INCIDENT DE SÉCURITÉ – {ref}
Gravité : élevée   Statut : maîtrisé
Déclaré par : {A} ({A.email})
Détection : {date} à {time}

Des tentatives de connexion répétées sur la console {product} provenaient de l'adresse \
{ip}. Le compte de {B} a été verrouillé après 12 échecs.

{A.last} a réinitialisé les identifiants de {B.hon} {B.last} conformément à l'article \
{section} de la politique d'accès. {C} (service {dept}) confirme qu'aucune donnée client \
n'a été exportée.""",
    """invoice
FACTURE N° {ref}
Date : {date}    Échéance : {date2}

{org}
{addrml}
SIRET 552 100 554 00{n1}

Client :
{A.hon} {A}
{A.addrml}

Désignation                         Qté   Montant HT
Licence {product} {version}          12   {amount}
Accompagnement (article {section})    1   {amount2}

Règlement par virement : IBAN {iban}
Contact : {B} – {B.phone}""",
    """employee_record
FICHE SALARIÉ – {dept}
Nom : {A.LAST}
Prénom : {A.first}
Adresse : {A.addr}
Téléphone : {A.phone}
Courriel : {A.email}
Date d'entrée : {date}
Responsable : {B.hon} {B.last}
Commentaire : {A.first} remplace {C} pendant son congé ; {C.last} reprend le {date2}.""",
    """complaint
Objet : Contestation de prélèvements – dossier {ref}

Madame, Monsieur,

Je soussigné(e) {A}, titulaire de la carte {card}, conteste deux débits de {amount} du \
{date} que je n'ai pas effectués. J'ai fait opposition le jour même ; ma nouvelle carte \
porte le numéro {card2}.

Merci de recréditer mon compte {iban} et de me répondre à {A.email} ou au {A.phone}.

Adresse : {A.addr}

{close},
{A}

Note interne : {B} a rappelé {A.hon} {A.last} le {date2} ; remboursement accordé.""",
)

_DE = (
    """email
Von: {A} <{A.email}>
An: {B} <{B.email}>
Cc: {C} <{C.email}>
Gesendet: {date}
Betreff: {product} – Freigabe {version}

Hallo {B.first},

wie besprochen hat {C.hon} {C.last} die Freigabe von {product} {version} für den \
{date2} erteilt. Bitte informiere das Team {dept} und friere die Änderungen nach \
Abschnitt {section} ein.

{C.last}s Team übernimmt die Rufbereitschaft am Wochenende.

{close}
{A}
{A.role}
{org}
Tel.: {A.phone}""",
    """employment_contract
ARBEITSVERTRAG

zwischen der {org}, {addr}, vertreten durch {A.hon} {A},
– nachfolgend „Arbeitgeber“ –

und

{B.hon} {B}, geboren am {date}, wohnhaft {B.addr},
– nachfolgend „Arbeitnehmer/in“ –

§ 1 Beginn und Tätigkeit
Das Arbeitsverhältnis beginnt am {date2}. {B.hon} {B.last} wird als {B.role} im Bereich \
{dept} eingestellt.

§ 2 Vergütung
Das Bruttojahresgehalt beträgt {amount}. Die Zahlung erfolgt auf das Konto IBAN {iban}.""",
    """meeting_minutes
Protokoll – Lenkungsausschuss {product}
Datum: {date}, {time} Uhr
Teilnehmende: {A} (Vorsitz), {B.hon} {B.last}, {C}, {D}
Entschuldigt: {E}

TOP 1 Stand der Tests
{B.last} berichtet, dass 14 von 16 Testfällen bestanden sind. {C.first} weist auf den \
offenen Punkt in Abschnitt {section} hin.

TOP 2 Budget
Bisherige Ausgaben: {amount} bei einem Budget von {amount2}.

Aufgaben
- {D.last}: Supportzeiten mit {org} bis {date2} klären.
- {A.first}: Testbericht {ref} verteilen.""",
    """performance_review
MITARBEITERBEURTEILUNG {ref}
Mitarbeiter/in: {A}
Führungskraft: {B.hon} {B.last}
Zeitraum: {date} – {date2}

{A.first} hat die Ziele der {product}-Migration übertroffen und nach dem Wechsel von \
{C} an den Standort {city} die Leitung des Teams {dept} übernommen. Die Dokumentation \
von {A.last} zu Release {version} ist inzwischen Teamstandard.

Entwicklungsfeld: Delegation. {B.last} empfiehlt, dass {A.first} beim nächsten Audit \
mit {C.first} zusammenarbeitet.""",
    """invoice
RECHNUNG Nr. {ref}
Rechnungsdatum: {date}    Fällig: {date2}

{org}
{addrml}
USt-IdNr. DE 81{n1}{n2}

Rechnungsempfänger:
{A.hon} {A}
{A.addrml}

Pos. Bezeichnung                       Menge   Betrag
1    Lizenz {product} {version}          12    {amount}
2    Einführung (Abschnitt {section})      1    {amount2}

Bitte überweisen Sie den Betrag auf IBAN {iban}.
Ansprechpartner: {B}, {B.phone}, {B.email}""",
    """incident_report
SICHERHEITSVORFALL {ref}
Schweregrad: hoch    Status: eingedämmt
Gemeldet von: {A} ({A.email})
Erkannt: {date}, {time} Uhr

Wiederholte Fehlanmeldungen an der {product}-Konsole kamen von {ip}. Das Konto von {B} \
wurde nach 12 Versuchen gesperrt; danach folgte eine erfolgreiche Sitzung von {ip2}.

{A.last} hat die Zugangsdaten von {B.hon} {B.last} zurückgesetzt (Abschnitt {section} \
der Zugriffsrichtlinie). {C} aus dem Bereich {dept} bestätigt, dass keine Kundendaten \
exportiert wurden.""",
    """hr_letter
{org} · {addr}

{B.hon}
{B}
{B.addrml}

{city}, {date}

Bestätigung Ihrer Kündigung

Guten Tag {B.hon} {B.last},

wir bestätigen den Eingang Ihrer Kündigung vom {date2}. Bitte geben Sie Ihren Laptop \
und Ihren Ausweis bis zum letzten Arbeitstag bei {A.first} in der Abteilung {dept} ab.

{close}
{A}
{A.role}""",
    """complaint
Betreff: Widerspruch gegen Kartenbelastung – Vorgang {ref}

Sehr geehrte Damen und Herren,

auf meiner Kreditkarte {card} wurden am {date} zwei Beträge von je {amount} belastet, \
die ich nicht veranlasst habe. Die Karte ist gesperrt; die Ersatzkarte hat die Nummer \
{card2}.

Bitte erstatten Sie den Betrag auf mein Konto {iban}. Sie erreichen mich unter \
{A.phone} oder {A.email}.

{close}
{A}
{A.addr}

Interner Vermerk: {B} hat {A.hon} {A.last} am {date2} zurückgerufen; Erstattung genehmigt.""",
)

_ES = (
    """email
De: {A} <{A.email}>
Para: {B} <{B.email}>
CC: {C} <{C.email}>
Fecha: {date}
Asunto: Paso a producción de {product} – {ref}

Hola, {B.first}:

Tal como acordamos, {C.hon} {C.last} ha aprobado el paso a producción de la versión \
{version} el {date2}. Avisa por favor al equipo de {dept} y congela los cambios del \
apartado {section}.

El equipo de {C.last} cubrirá la guardia del fin de semana.

{close},
{A}
{A.role}
{org}
Tel.: {A.phone}""",
    """contract_preamble
CONTRATO DE PRESTACIÓN DE SERVICIOS

En {city}, a {date}

REUNIDOS

De una parte, {A.hon} {A}, mayor de edad, con NIF {nif}, en nombre y representación de \
{org}, con domicilio social en {addr}.

De otra parte, {B.hon} {B}, con NIE {nie} y domicilio en {B.addr}, en su propio nombre.

Ambas partes se reconocen capacidad legal suficiente y

EXPONEN
I. Que {org} precisa los servicios de soporte de {product} ({version}) descritos en el \
Anexo {section}.
II. Que {B.hon} {B.last} dispone de la experiencia necesaria para prestarlos.""",
    """meeting_minutes
Acta – Comité de seguimiento {product}
Fecha: {date}, {time}
Asistentes: {A} (presidencia), {B.hon} {B.last}, {C}, {D}
Excusa su asistencia: {E}

1. Estado de las pruebas
{B.last} informa de que se han superado 14 de 16 casos de prueba. {C.first} señala la \
incidencia abierta del apartado {section}.

2. Presupuesto
Gasto a la fecha: {amount} sobre un presupuesto de {amount2}.

Acciones
- {D.last}: confirmar con {org} el horario de soporte antes del {date2}.
- {A.first}: distribuir el informe {ref}.""",
    """payslip
RECIBO DE SALARIOS – {dept}
Empresa: {org}    CIF: B{n1}{n2}
Trabajador/a: {A.lf}
NIF: {nif}
Domicilio: {A.addr}
Periodo: {date} – {date2}

Salario base                  {amount}
Complemento de puesto         {amount2}

Importe abonado en la cuenta {iban}.
Recibí: {A.first}""",
    """incident_report
INFORME DE INCIDENCIA DE SEGURIDAD {ref}
Gravedad: alta    Estado: contenida
Notificada por: {A} ({A.email})
Detectada: {date}, {time}

Se registraron intentos de acceso repetidos a la consola de {product} desde {ip}. La \
cuenta de {B} se bloqueó tras 12 intentos.

{A.last} restableció las credenciales de {B.hon} {B.last} según el apartado {section} de \
la política de accesos. {C} ({dept}) confirma que no se exportaron datos de clientes.""",
    """invoice
FACTURA N.º {ref}
Fecha: {date}    Vencimiento: {date2}

{org}
{addrml}

Cliente: {A.hon} {A}
NIE: {nie}
{A.addrml}

Concepto                               Uds.   Importe
Licencia {product} {version}             12   {amount}
Implantación (apartado {section})         1   {amount2}

Pago por transferencia a {iban}. Dudas: {B}, {B.phone}.""",
    """complaint
Asunto: Reclamación por cargos no reconocidos – expediente {ref}

Estimados señores:

Yo, {A}, con NIF {nif}, titular de la tarjeta {card}, no reconozco dos cargos de \
{amount} del {date}. He bloqueado la tarjeta y la nueva es la {card2}.

Les ruego que abonen el importe en mi cuenta {iban} y que me contesten a {A.email} o al \
{A.phone}.

{close},
{A}
{A.addr}

Nota interna: {B} llamó a {A.hon} {A.last} el {date2}; reembolso aprobado.""",
    """employee_list
id;apellidos;nombre;documento;email;departamento
{n1};{A.last};{A.first};{nif};{A.email};{dept}
{n2};{B.last};{B.first};{nie};{B.email};{dept}
{n3};{C.last};{C.first};{nif2};{C.email};{dept2}
{n4};{D.last};{D.first};{nie2};{D.email};{dept2}""",
)

_IT = (
    """email
Da: {A} <{A.email}>
A: {B} <{B.email}>
Cc: {C} <{C.email}>
Data: {date}
Oggetto: Rilascio {product} – {ref}

Ciao {B.first},

come concordato, {C.hon} {C.last} ha approvato il rilascio della versione {version} per \
il {date2}. Per favore avvisa il team {dept} e congela le modifiche previste al \
paragrafo {section}.

Il team di {C.last} coprirà la reperibilità del fine settimana.

{close},
{A}
{A.role}
{org}
Tel. {A.phone}""",
    """contract_preamble
CONTRATTO DI CONSULENZA

Tra

{org}, con sede legale in {addr}, in persona del legale rappresentante {A.hon} {A},

e

{B.hon} {B}, nato/a il {date}, codice fiscale {cf}, residente in {B.addr} (di seguito \
"il Consulente"),

si conviene e si stipula quanto segue.

Art. 1 – Oggetto. Il Consulente presta assistenza sulla piattaforma {product} \
({version}) secondo l'Allegato {section}.
Art. 2 – Compenso. Il compenso è di {amount}, da versare sul conto {iban}.
Art. 3 – Referenti. Per {org} il referente è {A.hon} {A.last}.""",
    """meeting_minutes
Verbale della riunione del comitato {product}
Data: {date}, ore {time}
Presenti: {A} (presidenza), {B.hon} {B.last}, {C}, {D}
Assenti giustificati: {E}

1. Stato dei test
{B.last} riferisce che 14 casi di test su 16 sono superati. {C.first} segnala il punto \
aperto al paragrafo {section}.

2. Budget
Spesa a oggi: {amount} su un budget di {amount2}.

Azioni
- {D.last}: verificare con {org} gli orari di supporto entro il {date2}.
- {A.first}: inviare il rapporto {ref}.""",
    """employee_record
SCHEDA ANAGRAFICA DIPENDENTE
Cognome: {A.LAST}
Nome: {A.first}
Codice fiscale: {cf}
Residenza: {A.addr}
Cellulare: {A.phone}
E-mail: {A.email}
IBAN per accredito stipendio: {iban}
Ufficio: {dept} – responsabile {B.hon} {B.last}
Note: {A.first} sostituisce {C} fino al {date2}; al rientro {C.last} riprende i fornitori.""",
    """incident_report
SEGNALAZIONE INCIDENTE DI SICUREZZA {ref}
Gravità: alta    Stato: contenuto
Segnalato da: {A} ({A.email})
Rilevato: {date}, ore {time}

Tentativi di accesso ripetuti alla console {product} provenienti dall'indirizzo {ip}. \
L'account di {B} è stato bloccato dopo 12 tentativi.

{A.last} ha reimpostato le credenziali di {B.hon} {B.last} secondo il paragrafo \
{section} della policy di accesso. {C} ({dept}) conferma che non sono stati esportati \
dati dei clienti.""",
    """reference_letter
{city}, {date}

Oggetto: lettera di referenze per {A}

Con la presente attesto che {A.hon} {A} ha lavorato presso {org} nel team {dept} dal \
2019 al 2024. {A.first} ha coordinato l'introduzione di {product} in {n1} sedi ed è \
stato/a il principale riferimento per i revisori.

{A.last} è una persona precisa e affidabile. Per ulteriori informazioni potete \
contattarmi all'indirizzo {B.email} o al numero {B.phone}.

{close},
{B}
{B.role}""",
    """complaint
Oggetto: contestazione addebiti – pratica {ref}

Spett.le {org},

io sottoscritto/a {A}, codice fiscale {cf}, titolare della carta {card}, contesto due \
addebiti di {amount} del {date} che non ho effettuato. La carta è stata bloccata e la \
nuova carta è la {card2}.

Vi prego di riaccreditare l'importo sul conto {iban} e di rispondermi a {A.email} o al \
numero {A.phone}.

{close},
{A}
{A.addr}

Nota interna: {B} ha richiamato {A.hon} {A.last} il {date2}; rimborso approvato.""",
    """employee_list
matricola;cognome;nome;codice_fiscale;email;ufficio
{n1};{A.LAST};{A.first};{cf};{A.email};{dept}
{n2};{B.LAST};{B.first};{cf2};{B.email};{dept}
{n3};{C.LAST};{C.first};{cf3};{C.email};{dept2}
{n4};{D.LAST};{D.first};{cf4};{D.email};{dept2}""",
    """payslip
CEDOLINO PAGA – {date}
Azienda: {org}    P. IVA 0{n1}{n2}{n3}1
Dipendente: {A.lf}
Codice fiscale: {cf}
Qualifica: {A.role}    Ufficio: {dept}
IBAN accredito: {iban}

Retribuzione lorda              {amount}
Trattenute                      {amount2}

Per informazioni: {B} – {B.email}""",
)

#: Template sources by language.
SOURCES: dict[str, tuple[str, ...]] = {"en": _EN, "fr": _FR, "de": _DE, "es": _ES, "it": _IT}
