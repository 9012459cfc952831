"""Validation of operator input, before anything touches Keycloak.

Each function returns the normalised value or raises ``InvalidInput`` with a one-line
message that names the bad value (never a secret), shortened so that a pasted novel stays
one readable line.

Lengths are Keycloak's column limits (Liquibase changelogs of Keycloak 26.7.3, module
keycloak-model-jpa): an organization's ``NAME`` is ``VARCHAR(255)`` (jpa-changelog-25.0.0),
an identity provider's ``PROVIDER_DISPLAY_NAME`` ``VARCHAR(255)`` (2.3.0), every
organization attribute value is a row of ``GROUP_ATTRIBUTE.VALUE``, ``NVARCHAR(255)``
(1.7.0, 2.5.0), and a domain ``ORG_DOMAIN.NAME`` ``VARCHAR(255)``. Beyond them Keycloak
answers HTTP 500 (or, on some databases, truncates). Java and SQL Server count UTF-16 code
units, PostgreSQL code points: the limits count UTF-16 units, the stricter of the two.
Control characters are refused in free text too: PostgreSQL refuses NUL, and a newline in a
name would break every one-line message and table that shows it.

Domains (and the domain of every email) are stored as DNS names in ASCII: an
internationalised name becomes its A-label (``bücher.example`` -> ``xn--bcher-kva.example``),
the form Keycloak's organization domains, Entra's verified domains and DNS compare. Only ASCII
letters are lower-cased. A non-ASCII name must already be a valid IDNA 2008 name as typed
(RFC 5891/5892: lower case, NFC, no compatibility characters) and each label must be written
in one script (or one of the Latin-with-CJK combinations of UTS 39's highly restrictive level).
Nothing is mapped the UTS 46 way: that mapping turns U+212A KELVIN SIGN into ``k`` and
fullwidth letters into ASCII, so a look-alike would silently become another account's domain;
a person who sees their name refused, with the character named, can type what they meant.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import date

import idna
from idna import idnadata, intranges

from apsis_core.errors import InvalidInput

# Keycloak's limit for an organization name, an IdP display name and an attribute value.
TEXT_MAX = 255
# RFC 5321 4.5.3.1.3: a forward-path holds at most 256 octets with its angle brackets.
EMAIL_MAX = 254
# Entra generates 40-character secret values; anything far longer is not one (and would
# only be sent to Entra to be refused).
SECRET_MAX = 512
SHOWN_MAX = 60

ACCOUNT_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
# RFC 1035 labels, at least one dot, a TLD of letters (or an IDN A-label).
DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
# Used with fullmatch: ``$`` would also match before a trailing newline.
EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}")
A_LABEL_PREFIX = "xn--"
# UTS 39 "highly restrictive": one script per label, or Latin with these CJK combinations.
SCRIPT_SETS = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


def shown(value: str) -> str:
    """``value`` as an error message quotes it: repr, cut short when long."""
    if len(value) <= SHOWN_MAX:
        return repr(value)
    return f"{value[:SHOWN_MAX]!r}... ({len(value)} characters)"


def utf16_length(value: str) -> int:
    """Length as Java (and so Keycloak's column checks) counts it."""
    return len(value.encode("utf-16-le")) // 2


def free_text(value: str, what: str, *, max_length: int = TEXT_MAX) -> str:
    """A name or other free text Keycloak stores: stripped, not empty, no control
    characters, at most ``max_length`` UTF-16 units."""
    text = value.strip()
    if not text:
        raise InvalidInput(f"the {what} is empty")
    length = utf16_length(text)
    if length > max_length:
        raise InvalidInput(f"the {what} is {length} characters long; Keycloak stores at most {max_length}")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise InvalidInput(f"the {what} {shown(text)} contains a control character (newline, tab, NUL, ...)")
    return text


def account_id(value: str) -> str:
    value = value.strip()
    if not ACCOUNT_ID.match(value):
        raise InvalidInput(f"invalid account id {shown(value)}: use 1-40 lower-case letters, digits and inner hyphens")
    return value


def domain(value: str) -> str:
    """A DNS name in ASCII, lower case, without the root dot; an internationalised name as its
    A-label. Refuses what IDNA 2008 refuses instead of mapping it (see the module's doc)."""
    name = value.strip().rstrip(".")
    labels = [ascii_lower(label) for label in name.split(".")]
    try:
        normalised = ".".join(_a_label(label) for label in labels)
    except InvalidInput as exc:
        raise InvalidInput(f"invalid domain {shown(value)}: {exc.format_message()}") from None
    if not DOMAIN.fullmatch(normalised):
        raise InvalidInput(f"invalid domain {shown(value)}: expected a DNS name such as example.com")
    return normalised


def ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only: ``str.lower`` also turns U+212A KELVIN SIGN into ``k``."""
    return "".join(c.lower() if c.isascii() else c for c in text)


def _a_label(label: str) -> str:
    """``label`` as DNS stores it; an A-label or U-label is checked against IDNA 2008."""
    if label.isascii() and not label.startswith(A_LABEL_PREFIX):
        return label  # LDH or not, the DOMAIN pattern decides
    if label.isascii():
        try:
            unicode = idna.ulabel(label)
        except (idna.IDNAError, UnicodeError):
            raise InvalidInput(f"{label!r} is not a valid IDNA A-label") from None
        _one_script(unicode)
        return label
    try:
        encoded = idna.alabel(label).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidInput(_why_not_idna(label, exc)) from None
    _one_script(label)
    return encoded


def _why_not_idna(label: str, exc: Exception) -> str:
    for c in label:
        if unicodedata.normalize("NFC", c) != c or not _allowed(c):
            return f"{_named(c)} is not allowed in a domain name (IDNA 2008); type the name with the letters it means"
    return f"{label!r} is not a valid internationalised domain label (IDNA 2008: {exc})"


def _allowed(c: str) -> bool:
    classes = idnadata.codepoint_classes
    return any(intranges.intranges_contain(ord(c), classes[k]) for k in ("PVALID", "CONTEXTJ", "CONTEXTO"))


def _named(c: str) -> str:
    return f"{c!r} (U+{ord(c):04X} {unicodedata.name(c, 'unnamed character')})"


def _script(c: str) -> str | None:
    """The script of a letter by its Unicode name (``LATIN SMALL LETTER A`` -> LATIN); digits,
    hyphens and combining marks belong to the letters around them."""
    if not unicodedata.category(c).startswith("L"):
        return None
    word = unicodedata.name(c, "").split(" ")[0]
    if word == "CJK":
        return "HAN"
    return None if "-" in word else word or None


def _one_script(label: str) -> None:
    scripts = {s for s in map(_script, label) if s}
    if len(scripts) > 1 and not any(scripts <= allowed for allowed in SCRIPT_SETS):
        raise InvalidInput(
            f"the label {label!r} mixes scripts ({', '.join(sorted(s.title() for s in scripts))}), "
            "as look-alikes of other names do"
        )


def email(value: str) -> str:
    raw = value.strip()
    if len(raw) > EMAIL_MAX:
        raise InvalidInput(f"invalid email {shown(value)}: longer than {EMAIL_MAX} characters")
    local, sep, host = raw.rpartition("@")
    if sep and not local.isascii():
        c = next(c for c in local if not c.isascii())
        raise InvalidInput(f"invalid email {shown(value)}: {_named(c)} before the @; only ASCII is accepted there")
    if not sep or not EMAIL_LOCAL.fullmatch(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidInput(f"invalid email {shown(value)}")
    try:
        host = domain(host)
    except InvalidInput as exc:
        reason = exc.format_message().partition(": ")[2]
        raise InvalidInput(f"invalid email {shown(value)}: bad domain ({reason})") from None
    address = f"{local.lower()}@{host}"
    if len(address) > EMAIL_MAX:
        raise InvalidInput(f"invalid email {shown(value)}: {address} is longer than {EMAIL_MAX} characters")
    return address


def tenant_id(value: str) -> str:
    """A tenant is named by its GUID or by one of its verified domains."""
    raw = value.strip()
    try:
        return str(uuid.UUID(raw)) if len(raw) == 36 else _not_guid(raw)
    except ValueError:
        pass
    try:
        return domain(raw)
    except InvalidInput as exc:
        reason = exc.format_message().partition(": ")[2]
        if not reason.startswith("expected"):  # a domain, refused for a reason of its own
            raise InvalidInput(f"invalid tenant id {shown(value)}: {reason}") from None
        raise InvalidInput(
            f"invalid tenant id {shown(value)}: expected a GUID (Directory (tenant) ID) or a domain such as contoso.onmicrosoft.com"
        ) from None


def _not_guid(raw: str) -> str:
    raise ValueError(raw)


def client_id(value: str) -> str:
    raw = value.strip()
    try:
        return str(uuid.UUID(raw)) if len(raw) == 36 else _not_guid(raw)
    except ValueError:
        raise InvalidInput(f"invalid client id {shown(value)}: expected the Application (client) ID, a GUID") from None


def future_date(value: str, today: date | None = None) -> date:
    today = today or date.today()
    try:
        parsed = date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"invalid date {shown(value)}: expected YYYY-MM-DD") from None
    if parsed <= today:
        raise InvalidInput(f"date {parsed.isoformat()} is not in the future")
    return parsed


def client_secret(value: str) -> str:
    secret = value.strip()
    if not secret:
        raise InvalidInput("the client secret is empty")
    if len(secret) < 8 or len(secret) > SECRET_MAX or any(c.isspace() or not c.isprintable() for c in secret):
        raise InvalidInput("the client secret does not look like an Entra client secret value")
    try:
        uuid.UUID(secret)
    except ValueError:
        return secret
    raise InvalidInput("that is a secret ID (a GUID), not the secret value: copy the Value column in Entra")
