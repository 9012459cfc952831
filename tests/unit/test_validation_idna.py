"""Domains and email addresses with non-ASCII characters: a valid IDNA 2008 name becomes its
A-label; a compatibility character, a capital that only Unicode lower-casing would fold, a
look-alike mixing scripts is refused, naming the character, instead of collapsing into
another (ASCII) domain. The same rule holds on every path that takes a domain or address:
the account model (CLI and declarative file), ``members add``/``pilot add`` and the portal."""

from __future__ import annotations

from pathlib import Path

import pytest

from apsis_core import validation
from apsis_core.account import Account, AccountRecord
from apsis_core.errors import InvalidInput
from portal import forms
from provisioning import declarative

pytestmark = pytest.mark.unit

KELVIN = "\N{KELVIN SIGN}"

REFUSED = {
    "Kelvin sign": (f"{KELVIN}elvin.example", "U+212A KELVIN SIGN"),
    "fullwidth letters": ("\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", "U+FF45 FULLWIDTH LATIN SMALL LETTER E"),
    "fullwidth full stop": ("example\uff0ecom", "U+FF0E FULLWIDTH FULL STOP"),
    "ideographic full stop": ("example\u3002com", "U+3002 IDEOGRAPHIC FULL STOP"),
    "capital I with dot above": ("\N{LATIN CAPITAL LETTER I WITH DOT ABOVE}stanbul.example", "U+0130"),
    "capital umlaut": ("B\N{LATIN CAPITAL LETTER U WITH DIAERESIS}CHER.example", "U+00DC"),
    "ohm sign": ("\N{OHM SIGN}mega.example", "U+2126 OHM SIGN"),
    "mixed Latin and Cyrillic": ("p\N{CYRILLIC SMALL LETTER A}ypal.example", "mixes scripts (Cyrillic, Latin)"),
    "mixed Latin and Greek": ("\N{GREEK SMALL LETTER OMICRON}pen.example", "mixes scripts (Greek, Latin)"),
    "mixed script as an A-label": ("xn--pypal-4ve.example", "mixes scripts (Cyrillic, Latin)"),
    "A-label that decodes to nothing valid": ("xn--zzzzzz.example", "not a valid IDNA A-label"),
    "emoji": ("\N{PILE OF POO}.example", "U+1F4A9"),
    "decomposed accent (not NFC)": ("b\u0075\u0308cher.example", "Normalization Form C"),
}

ACCEPTED = {
    "umlaut": ("b\N{LATIN SMALL LETTER U WITH DIAERESIS}cher.example", "xn--bcher-kva.example"),
    "sharp s stays itself (IDNA 2008, not mapped to ss)": (
        "stra\N{LATIN SMALL LETTER SHARP S}e.example",
        "xn--strae-oqa.example",
    ),
    "dotless i stays itself": ("\N{LATIN SMALL LETTER DOTLESS I}bm.example", "xn--bm-gpa.example"),
    "ASCII capitals fold": ("Bücher.EXAMPLE.", "xn--bcher-kva.example"),
    "A-label given": ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
    "Japanese: Han with Hiragana": ("\u4f8b\u3048.example", "xn--r8jz45g.example"),
    "Han with Latin": ("\u6771\u4eactokyo.example", "xn--tokyo-w91hq39l.example"),
    "Greek alone": ("\u03b1\u03b2\u03b3.example", "xn--mxacd.example"),
}


@pytest.mark.parametrize("case", sorted(REFUSED), ids=str)
def test_a_domain_idna_2008_refuses_is_refused_naming_why(case: str):
    value, why = REFUSED[case]
    with pytest.raises(InvalidInput) as refused:
        validation.domain(value)
    message = refused.value.format_message()
    assert message.startswith(f"invalid domain {value!r}: ") and why in message
    assert "\n" not in message


@pytest.mark.parametrize("case", sorted(ACCEPTED), ids=str)
def test_a_valid_idna_2008_domain_becomes_its_a_label(case: str):
    value, a_label = ACCEPTED[case]
    assert validation.domain(value) == a_label


def test_nothing_non_ascii_collapses_into_an_ascii_domain():
    """Every look-alike of ``kelvin.example``/``example.com`` is refused or stays distinct."""
    for value in (
        f"{KELVIN}elvin.example",
        "\N{LATIN SMALL LETTER DOTLESS I}bm.example",
        "stra\N{LATIN SMALL LETTER SHARP S}e.example",
        "\uff45xample.com",
    ):
        try:
            result = validation.domain(value)
        except InvalidInput:
            continue
        assert result.startswith("xn--") and result not in {"kelvin.example", "ibm.example", "strasse.example"}


def test_emails_take_the_same_rule_for_their_domain_and_ascii_only_before_the_at():
    assert validation.email("Ivy@B\N{LATIN SMALL LETTER U WITH DIAERESIS}cher.example") == "ivy@xn--bcher-kva.example"
    with pytest.raises(InvalidInput, match="bad domain .*U\\+212A KELVIN SIGN"):
        validation.email(f"ivy@{KELVIN}elvin.example")
    with pytest.raises(InvalidInput, match="U\\+212A KELVIN SIGN.* before the @"):
        validation.email(f"{KELVIN}elvin@acme.example")
    with pytest.raises(InvalidInput, match="before the @"):
        validation.email("\uff49vy@acme.example")


def test_a_newline_at_the_end_of_the_local_part_is_refused():
    """``$`` also matches before a trailing newline: the pattern must match the whole part."""
    with pytest.raises(InvalidInput):
        validation.email("ivy\n@acme.example")


def test_an_address_that_grows_past_254_as_an_a_label_is_refused():
    host = "".join(chr(0x4E00 + 37 * i) for i in range(16))  # 16 CJK ideographs, a 37-character A-label
    value = f"{'i' * 64}@{host}.{'d' * 60}.{'e' * 60}.{'f' * 30}.example"
    assert len(value) == 242
    with pytest.raises(InvalidInput, match="longer than 254"):
        validation.email(value)


def _account(**overrides: object) -> Account:
    fields: dict[str, object] = dict(
        id="acme", name="Acme", domains=["acme.example"], it_contact_name="Ivy", it_contact_email="ivy@acme.example"
    )
    fields.update(overrides)
    return Account.build(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["domains", "it_contact_email", "pilot", "tenant_id"])
def test_the_account_model_refuses_a_kelvin_sign_in_every_field(field: str):
    kelvin = f"{KELVIN}elvin.example"
    overrides: dict[str, object] = {
        "domains": {"domains": [kelvin]},
        "it_contact_email": {"it_contact_email": f"ivy@{kelvin}"},
        "pilot": {"pilot": [f"ann@{kelvin}"]},
        "tenant_id": {
            "tenant_id": kelvin,
            "client_id": "22222222-2222-2222-2222-222222222222",
            "secret_expires": "2099-01-01",
        },
    }[field]
    with pytest.raises(InvalidInput, match="KELVIN SIGN"):
        _account(**overrides)


def test_the_declarative_file_refuses_a_kelvin_sign_and_stores_idn_as_a_label(tmp_path: Path):
    path = tmp_path / "accounts.yaml"
    text = (
        "version: 1\naccounts:\n  - id: acme\n    name: Acme\n    domains: [DOMAIN]\n"
        "    it_contact: {name: Ivy, email: ivy@acme.example}\n"
    )
    path.write_text(text.replace("DOMAIN", f"{KELVIN}elvin.example"), encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"accounts\[0\] \(acme\): invalid domain .*KELVIN SIGN"):
        declarative.load(path)
    path.write_text(text.replace("DOMAIN", "b\N{LATIN SMALL LETTER U WITH DIAERESIS}cher.example"), encoding="utf-8")
    assert declarative.load(path).accounts[0].domains == ("xn--bcher-kva.example",)


def test_the_portals_fields_refuse_a_kelvin_sign():
    account = AccountRecord.parse(
        {
            "id": "org-1",
            "alias": "kelvin",
            "name": "Kelvin",
            "domains": [{"name": "kelvin.example"}],
            "attributes": {"apsis.stage": ["awaiting-setup"]},
        }
    )
    users, problem = forms.parse_test_users(f"ann@{KELVIN}elvin.example", account)
    assert users == () and problem is not None and "KELVIN SIGN" in problem
    submitted, form = forms.read_setup(
        {
            "tenant": f"{KELVIN}elvin.onmicrosoft.com",
            "client_id": "6a8b0b2e-1c3d-4e5f-8a9b-0c1d2e3f4a5b",
            "client_secret": "Abc8Q~" + "x" * 34,
            "secret_expires": "2099-01-31",
            "test_users": "ann@kelvin.example",
        },
        account,
    )
    assert form is None and set(submitted.errors) == {"tenant"}


def test_ascii_lower_folds_only_ascii_letters():
    """For values read back from Keycloak or Entra (``str.lower`` turns U+212A into ``k``)."""
    assert validation.ascii_lower(f"Ivy@{KELVIN}ELVIN.Example") == f"ivy@{KELVIN}elvin.example"
    assert (
        validation.ascii_lower("\N{LATIN CAPITAL LETTER I WITH DOT ABOVE}X")
        == "\N{LATIN CAPITAL LETTER I WITH DOT ABOVE}x"
    )
