"""Plates, VINs and ID numbers (DESIGN §2.1–§2.3): each rule, its failure, and properties."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ctplhub.domain.errors import InvalidIdNumber, InvalidPlate, InvalidVin
from ctplhub.domain.identifiers import (
    DIGITS,
    NEW_ENERGY_LARGE_LAST,
    NEW_ENERGY_SMALL_FIRST,
    ORDINARY_SUFFIXES,
    PROVINCES,
    SERIAL_CHARS,
    USCC_CHARS,
    VIN_CHARS,
    IdNumber,
    Plate,
    Vin,
    _checked_plate_kind,
    _plate_kind,
    mask_vin,
    normalise_plate,
    resident_id_check_char,
    uscc_check_char,
    vin_check_digit,
    with_vin_check_digit,
)


def full_width(text: str) -> str:
    """What a Chinese IME produces for ASCII letters and digits."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


# --- plates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value", "kind"),
    [
        ("苏E12345", "苏E12345", "ordinary"),
        ("京A8888学", "京A8888学", "ordinary"),
        ("沪A1234领", "沪A1234领", "ordinary"),
        ("粤Z1234港", "粤Z1234港", "ordinary"),
        ("粤BD12345", "粤BD12345", "new_energy_small"),
        ("粤BDA1234", "粤BDA1234", "new_energy_small"),
        ("浙AF12345", "浙AF12345", "new_energy_small"),
        ("粤B12345D", "粤B12345D", "new_energy_large"),
        ("川A12345F", "川A12345F", "new_energy_large"),
        ("苏Ｅ１２３４５", "苏E12345", "ordinary"),
        ("苏e·12345", "苏E12345", "ordinary"),
        (" 苏 E 12345 ", "苏E12345", "ordinary"),
        ("苏\u3000E\u300012345", "苏E12345", "ordinary"),
        ("苏E-12345", "苏E12345", "ordinary"),
        ("苏E.12345", "苏E12345", "ordinary"),
        ("苏E•12345", "苏E12345", "ordinary"),
        ("苏E・12345", "苏E12345", "ordinary"),
        ("苏E\uff6512345", "苏E12345", "ordinary"),
        ("粤b·da1234", "粤BDA1234", "new_energy_small"),
    ],
)
def test_valid_plates_parse_to_compact_canonical_form(raw: str, value: str, kind: str) -> None:
    plate = Plate.parse(raw)
    assert (plate.value, plate.kind, str(plate)) == (value, kind, value)


@pytest.mark.parametrize(
    ("raw", "display"),
    [("苏E12345", "苏E·12345"), ("粤BD12345", "粤B·D12345"), ("粤B12345D", "粤B·12345D")],
)
def test_display_puts_a_middle_dot_after_the_second_character(raw: str, display: str) -> None:
    assert Plate.parse(raw).display == display


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("XE12345", "plate 'XE12345' starts with 'X', which is not a province abbreviation"),
        ("", "plate is empty"),
        (" · ", "plate is empty"),
        ("使014578", "plate '使014578' is an embassy plate (使), which is out of scope for CTPL"),
        ("苏E1234", "plate '苏E1234' has 6 characters; an ordinary plate has 7"),
        ("苏E123456789", "plate '苏E123456789' has 11 characters"),
        ("苏112345", "plate '苏112345' has '1' as its second character"),
        ("苏E1234I", "plate '苏E1234I' has 'I' at position 7; letters I and O are never used"),
        ("苏EO1234", "plate '苏EO1234' has 'O' at position 3"),
        ("苏E12#45", "plate '苏E12#45' has '#' at position 5; a plate serial uses only digits"),
        ("苏E学1234", "'学' may only be the last character of a 7-character plate"),
        ("粤BD1234学", "'学' may only be the last character of a 7-character plate"),
        ("苏E1234使", "is an embassy plate (使)"),
        ("粤BM12345", "has serial starting with 'M'; a small-vehicle new-energy serial"),
        ("粤BDA12B4", "new-energy plate '粤BDA12B4' must end with four digits, not '12B4'"),
        ("粤B12345X", "new-energy plate '粤B12345X' ends with 'X'; a large-vehicle"),
        ("粤B1234AD", "starts its serial with a digit, so it must be a large-vehicle plate"),
    ],
)
def test_invalid_plates_say_what_is_wrong(raw: str, message: str) -> None:
    with pytest.raises(InvalidPlate, match=re.escape(message)) as caught:
        Plate.parse(raw)
    assert caught.value.code == "invalid_plate"


@pytest.mark.parametrize("raw", [None, 12345, b"\xe8\x8b\x8fE12345", ["苏E12345"]])
def test_plate_must_be_a_string(raw: object) -> None:
    with pytest.raises(InvalidPlate, match="plate must be a string"):
        Plate.parse(raw)


def test_plate_constructor_refuses_what_parse_would_refuse() -> None:
    with pytest.raises(InvalidPlate, match="not in canonical form"):
        Plate("苏E·12345", "ordinary")
    with pytest.raises(InvalidPlate, match="not of kind 'new_energy_small'"):
        Plate("苏E12345", "new_energy_small")
    with pytest.raises(InvalidPlate, match="not a province abbreviation"):
        Plate("XE12345", "ordinary")


def test_normalise_plate_only_normalises() -> None:
    assert normalise_plate("ｘｅ－１２") == "XE12"
    assert normalise_plate("\t苏 e\n") == "苏E"


serial_char = st.sampled_from(SERIAL_CHARS)
digit = st.sampled_from(DIGITS)
head = st.tuples(st.sampled_from(PROVINCES), st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
ordinary = st.builds(
    lambda h, s, last: "".join(h) + "".join(s) + last,
    head,
    st.lists(serial_char, min_size=4, max_size=4),
    st.one_of(serial_char, st.sampled_from(ORDINARY_SUFFIXES)),
)
new_energy_small = st.builds(
    lambda h, first, second, tail: "".join(h) + first + second + "".join(tail),
    head,
    st.sampled_from(NEW_ENERGY_SMALL_FIRST),
    serial_char,
    st.lists(digit, min_size=4, max_size=4),
)
new_energy_large = st.builds(
    lambda h, digits, last: "".join(h) + "".join(digits) + last,
    head,
    st.lists(digit, min_size=5, max_size=5),
    st.sampled_from(NEW_ENERGY_LARGE_LAST),
)
valid_plate = st.one_of(ordinary, new_energy_small, new_energy_large)


@given(st.text())
def test_normalise_plate_is_idempotent(raw: str) -> None:
    once = normalise_plate(raw)
    assert normalise_plate(once) == once


@given(valid_plate)
def test_display_form_parses_back_to_the_same_plate(value: str) -> None:
    plate = Plate.parse(value)
    assert plate.value == value
    assert Plate.parse(plate.display).value == value


def _outcome(classify: Callable[[str], str], plate: str) -> str:
    try:
        return classify(plate)
    except InvalidPlate as error:
        return f"invalid: {error}"


# Near misses too: every character class of a plate, plus characters of no class.
plate_char = st.sampled_from(PROVINCES + SERIAL_CHARS + "IO" + ORDINARY_SUFFIXES + "使a９ ·")


@given(valid_plate | st.text(plate_char, max_size=9) | st.text(max_size=9))
def test_the_plate_pattern_classifies_exactly_as_the_checks(plate: str) -> None:
    """``_plate_kind`` answers well-formed plates by one pattern and leaves the others to
    the checks that explain them: the two must agree on every string, valid or not."""
    assert _outcome(_plate_kind, plate) == _outcome(_checked_plate_kind, plate)


@given(valid_plate | st.text(plate_char, max_size=9) | st.text(max_size=9))
def test_parse_takes_a_plate_typed_in_canonical_form_as_it_is(raw: str) -> None:
    """``Plate.parse`` skips normalising what the pattern accepts as typed: the result
    must be the one normalising then checking gives."""

    def slow(text: str) -> str:
        value = normalise_plate(text)
        return f"{value} {_checked_plate_kind(value)}"

    def fast(text: str) -> str:
        plate = Plate.parse(text)
        return f"{plate.value} {plate.kind}"

    assert _outcome(fast, raw) == _outcome(slow, raw)


@given(valid_plate, st.sampled_from([" ", "·", "-", ".", "\u3000"]), st.booleans())
def test_typed_variants_parse_to_the_same_plate(value: str, sep: str, wide: bool) -> None:
    typed = value[:2].lower() + sep + value[2:].lower()
    assert Plate.parse(full_width(typed) if wide else typed).value == value


# --- VINs ---------------------------------------------------------------------------------

CLASSIC_VIN = "1M8GDM9AXKP042788"  # the worked example of ISO 3779 / 49 CFR 565
CHINESE_VIN = "LSVAU218XN2183294"  # SAIC-VW format; check digit computed by hand: 351 % 11


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (CLASSIC_VIN, CLASSIC_VIN),
        (CHINESE_VIN, CHINESE_VIN),
        ("1m8gdm9axkp042788", CLASSIC_VIN),
        (" 1M8 GDM9AX\u3000KP042788 ", CLASSIC_VIN),
    ],
)
def test_valid_vins_parse(raw: str, value: str) -> None:
    assert Vin.parse(raw).value == value


def test_full_width_vin_parses() -> None:
    assert Vin.parse(full_width(CHINESE_VIN)).value == CHINESE_VIN


def test_vin_views() -> None:
    vin = Vin.parse(CHINESE_VIN)
    assert (str(vin), vin.masked) == (CHINESE_VIN, "LSVAU218XN2******")
    assert mask_vin(CHINESE_VIN) == vin.masked
    assert "183294" not in repr(vin)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        # With '0' in position 9 this looks real but fails: the other characters give 'X'.
        (
            "LSVAU2180N2183294",
            "VIN check digit (position 9) is '0', but the other characters give 'X'",
        ),
        ("1M8GDM9A1KP042788", "is '1', but the other characters give 'X'"),
        ("", "VIN is empty"),
        ("1M8GDM9AXKP04278", "VIN has 16 characters; a VIN has exactly 17"),
        ("1M8GDM9AXKP0427888", "VIN has 18 characters"),
        ("1M8GIM9AXKP042788", "VIN has 'I' at position 5; VINs never use I, O or Q"),
        ("1M8GDM9AXKP04278O", "VIN has 'O' at position 17"),
        ("QM8GDM9AXKP042788", "VIN has 'Q' at position 1"),
        ("1M8GDM9AXKP0427-8", "VIN has '-' at position 16; only digits and the letters"),
    ],
)
def test_invalid_vins_say_what_is_wrong(raw: str, message: str) -> None:
    with pytest.raises(InvalidVin, match=re.escape(message)) as caught:
        Vin.parse(raw)
    assert caught.value.code == "invalid_vin"


def test_vin_must_be_a_string_and_constructor_checks() -> None:
    with pytest.raises(InvalidVin, match="VIN must be a string, not int"):
        Vin.parse(17)
    with pytest.raises(InvalidVin, match="check digit"):
        Vin("LSVAU2180N2183294")


def test_check_digit_helpers_ignore_position_9() -> None:
    assert vin_check_digit("1M8GDM9A?KP042788") == "X"
    assert with_vin_check_digit("1M8GDM9A_KP042788") == CLASSIC_VIN
    with pytest.raises(InvalidVin, match="position 1"):
        vin_check_digit("IM8GDM9AXKP042788")


vin_body = st.text(alphabet=VIN_CHARS, min_size=17, max_size=17)
_VALUES = dict(zip(VIN_CHARS, "012345678912345678123457923456789", strict=True))


@given(vin_body)
def test_with_vin_check_digit_makes_vins_that_parse(body: str) -> None:
    vin = with_vin_check_digit(body)
    assert Vin.parse(vin).value == vin
    assert vin[:8] + vin[9:] == body[:8] + body[9:]


@given(vin_body, st.integers(0, 16).filter(lambda i: i != 8), st.sampled_from(VIN_CHARS))
def test_changing_one_character_breaks_the_check_digit(body: str, index: int, new: str) -> None:
    vin = with_vin_check_digit(body)
    assume(vin[index] != new)
    changed = vin[:index] + new + vin[index + 1 :]
    # Weights are 2..10 and 11 is prime, so only a same-value transliteration (A/J/1, ...)
    # keeps the sum; anything else must be refused.
    if _VALUES[new] == _VALUES[vin[index]]:
        assert Vin.parse(changed).value == changed
    else:
        assert vin_check_digit(changed) != changed[8]
        with pytest.raises(InvalidVin, match="check digit"):
            Vin.parse(changed)


# --- ID numbers ---------------------------------------------------------------------------

RESIDENT_ID = "11010519491231002X"  # the example in GB 11643 itself
USCC = "91350100M000100Y43"


def test_known_good_identity_numbers() -> None:
    resident = IdNumber.parse(RESIDENT_ID, "resident_id")
    assert (resident.value, resident.id_type, str(resident)) == (
        RESIDENT_ID,
        "resident_id",
        RESIDENT_ID,
    )
    assert resident_id_check_char(RESIDENT_ID[:17]) == "X"
    assert uscc_check_char(USCC[:17]) == "3"
    assert IdNumber.parse(USCC, "uscc").value == USCC


def test_id_numbers_are_normalised() -> None:
    assert IdNumber.parse(" 110105 19491231 002x ", "resident_id").value == RESIDENT_ID
    assert IdNumber.parse(full_width(USCC.lower()), "uscc").value == USCC
    assert IdNumber.parse(" ab 12 ", "other").value == "AB12"


def test_masks_and_repr_never_show_the_whole_number() -> None:
    resident = IdNumber.parse(RESIDENT_ID, "resident_id")
    assert resident.masked == "110***********002X"
    assert IdNumber.parse(USCC, "uscc").masked == "913***********0Y43"
    assert IdNumber.parse("E12345678", "other").masked == "*******78"
    assert IdNumber.parse("AB", "other").masked == "**"
    assert RESIDENT_ID not in repr(resident)
    assert "110***********002X" in repr(resident)


too_late = (date.today() + timedelta(days=2)).strftime("%Y%m%d")


@pytest.mark.parametrize(
    ("raw", "id_type", "message"),
    [
        (
            "110105194912310021",
            "resident_id",
            "check character (position 18) is '1', but the first 17 characters give 'X'",
        ),
        (
            "11010519491231002",
            "resident_id",
            "resident ID number has 17 characters; it must have 18",
        ),
        ("110105194912310", "resident_id", "has 15 characters"),
        (
            "1101051949123100AX",
            "resident_id",
            "has 'A' at position 17; the first 17 characters must be digits",
        ),
        (
            "110105194902300020",
            "resident_id",
            "birth date (positions 7-14) is not a real calendar date",
        ),
        ("110105189912310020", "resident_id", "birth year is before 1900"),
        (f"110105{too_late}0020", "resident_id", "birth date is in the future"),
        (
            "91350100M000100Y44",
            "uscc",
            "unified social credit code check character (position 18) is '4', "
            "but the first 17 characters give '3'",
        ),
        ("91350100M00010OY43", "uscc", "has 'O' at position 15; only digits and the letters"),
        ("91350100M000100Y4", "uscc", "unified social credit code has 17 characters"),
        ("", "other", "ID number must be 1 to 40 printable characters"),
        ("A" * 41, "other", "1 to 40 printable characters"),
        ("AB\x00", "other", "1 to 40 printable characters"),
        (
            RESIDENT_ID,
            "passport",
            "unknown id_type 'passport'; expected resident_id, uscc or other",
        ),
    ],
)
def test_invalid_id_numbers_say_what_is_wrong(raw: str, id_type: str, message: str) -> None:
    with pytest.raises(InvalidIdNumber, match=re.escape(message)) as caught:
        IdNumber.parse(raw, id_type)
    assert caught.value.code == "invalid_id_number"
    assert RESIDENT_ID not in caught.value.message


def test_id_number_must_be_a_string_and_constructor_checks() -> None:
    with pytest.raises(InvalidIdNumber, match="ID number must be a string, not NoneType"):
        IdNumber.parse(None, "other")
    with pytest.raises(InvalidIdNumber, match="check character"):
        IdNumber("110105194912310021", "resident_id")
    with pytest.raises(InvalidIdNumber, match="unknown id_type"):
        IdNumber(RESIDENT_ID, "passport")  # type: ignore[arg-type]


def test_check_char_helpers_refuse_bad_input() -> None:
    with pytest.raises(InvalidIdNumber, match="17 digits"):
        resident_id_check_char("1101051949")
    with pytest.raises(InvalidIdNumber, match="17 characters"):
        uscc_check_char("91350100I000100Y4")


@given(
    st.text(alphabet=DIGITS, min_size=6, max_size=6),
    st.dates(min_value=date(1900, 1, 1), max_value=date.today() - timedelta(days=2)),
    st.text(alphabet=DIGITS, min_size=3, max_size=3),
)
def test_resident_id_with_valid_date_and_check_char_parses(area: str, born: date, seq: str) -> None:
    first17 = f"{area}{born:%Y%m%d}{seq}"
    number = first17 + resident_id_check_char(first17)
    assert IdNumber.parse(number, "resident_id").value == number


@given(st.text(alphabet=USCC_CHARS, min_size=17, max_size=17))
def test_uscc_with_computed_check_char_parses(first17: str) -> None:
    code = first17 + uscc_check_char(first17)
    assert IdNumber.parse(code.lower(), "uscc").value == code
