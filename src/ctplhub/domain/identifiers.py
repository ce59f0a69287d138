"""Vehicle and owner identifiers: plates, VINs and ID numbers (DESIGN §2.1–§2.3).

Every identifier that enters the system goes through ``parse`` here, so a malformed value is
refused at the edge with a message that says exactly what is wrong, and the rest of the code
can trust that a ``Plate``, ``Vin`` or ``IdNumber`` is well formed. The dataclasses check
their invariants on construction too, so rows mapped back from storage cannot smuggle in a
value that ``parse`` would refuse.

VINs and ID numbers are personal data (§5.3), and the last six VIN characters are an owner's
verification factor, so neither appears in full in error messages or in ``repr``.
Standard library only: this is the domain core.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Literal, get_args

from ctplhub.domain.errors import InvalidIdNumber, InvalidPlate, InvalidVin
from ctplhub.domain.records import fast_init

PlateKind = Literal["ordinary", "new_energy_small", "new_energy_large"]
IdType = Literal["resident_id", "uscc", "other"]
_ID_TYPES: tuple[IdType, ...] = get_args(IdType)

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
ISSUER_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
# I and O are never used in a serial: they read as 1 and 0.
SERIAL_CHARS = DIGITS + ISSUER_LETTERS.replace("I", "").replace("O", "")
ORDINARY_SUFFIXES = "学警挂港澳领试超"
NEW_ENERGY_SMALL_FIRST = "DABCEFGHJK"
NEW_ENERGY_LARGE_LAST = "DF"

# What people type between plate parts; full-width forms become these under NFKC.
_PLATE_SEPARATORS = {ord(c): None for c in "·•.-・‧∙⋅‐‑‒–—―−"}


def normalise_plate(raw: str) -> str:
    """Canonical compact form of what a user typed; validates nothing.

    NFKC runs again at the end because removing a separator can bring a base letter and a
    combining mark together; without it the function would not be idempotent.
    """
    text = unicodedata.normalize("NFKC", raw).upper()
    text = "".join(text.split()).translate(_PLATE_SEPARATORS)
    return unicodedata.normalize("NFKC", text)


def display_plate(compact: str) -> str:
    """Display form of an already canonical plate: ``·`` after the second character."""
    return f"{compact[:2]}·{compact[2:]}"


_SERIAL = f"[{SERIAL_CHARS}]"
_VALID_PLATE = re.compile(
    f"[{PROVINCES}][{ISSUER_LETTERS}](?:"
    f"(?P<ordinary>{_SERIAL}{{4}}[{SERIAL_CHARS}{ORDINARY_SUFFIXES}])"
    f"|(?P<new_energy_large>[{DIGITS}]{{5}}[{NEW_ENERGY_LARGE_LAST}])"
    f"|(?P<new_energy_small>[{NEW_ENERGY_SMALL_FIRST}]{_SERIAL}[{DIGITS}]{{4}}))"
)
"""Exactly the plates :func:`_checked_plate_kind` accepts, the kind named by the group
that matched: one C call for a well-formed plate (a property test holds the two equal).
Every character it admits is its own NFKC and upper case form, so a string it matches
is also canonical as typed (``Plate.parse``)."""


def _plate_kind(plate: str) -> PlateKind:
    """Classify a normalised plate, or raise ``InvalidPlate`` naming the first fault.

    Every coverage question and every bulk-verify item classifies a plate, nearly always
    a well-formed one: the pattern answers those, the checks below explain the others."""
    valid = _VALID_PLATE.fullmatch(plate)
    if valid is not None:
        return valid.lastgroup  # type: ignore[return-value]  # a PlateKind group name
    return _checked_plate_kind(plate)


def _checked_plate_kind(plate: str) -> PlateKind:
    """Classify a normalised plate, or raise ``InvalidPlate`` naming the first fault."""
    if not plate:
        raise InvalidPlate("plate is empty")
    if "使" in plate:
        raise InvalidPlate(
            f"plate {plate!r} is an embassy plate (使), which is out of scope for CTPL"
        )
    if plate[0] not in PROVINCES:
        raise InvalidPlate(
            f"plate {plate!r} starts with {plate[0]!r}, which is not a province abbreviation"
        )
    if len(plate) not in (7, 8):
        raise InvalidPlate(
            f"plate {plate!r} has {len(plate)} characters; an ordinary plate has 7 "
            "and a new-energy plate 8"
        )
    if plate[1] not in ISSUER_LETTERS:
        raise InvalidPlate(
            f"plate {plate!r} has {plate[1]!r} as its second character, "
            "which must be an issuing-authority letter A-Z"
        )
    serial = plate[2:]
    last_may_be_suffix = len(plate) == 7
    for index, char in enumerate(serial):
        if char in SERIAL_CHARS:
            continue
        if last_may_be_suffix and index == len(serial) - 1 and char in ORDINARY_SUFFIXES:
            continue
        position = index + 3
        if char in "IO":
            why = "letters I and O are never used in a plate serial"
        elif char in ORDINARY_SUFFIXES:
            why = f"{char!r} may only be the last character of a 7-character plate"
        else:
            why = "a plate serial uses only digits and the letters A-Z except I and O"
        raise InvalidPlate(f"plate {plate!r} has {char!r} at position {position}; {why}")
    if len(plate) == 7:
        return "ordinary"
    if serial[0] in DIGITS:
        if not serial[:5].isdigit():
            raise InvalidPlate(
                f"new-energy plate {plate!r} starts its serial with a digit, so it must be "
                "a large-vehicle plate: five digits then D or F"
            )
        if serial[5] not in NEW_ENERGY_LARGE_LAST:
            raise InvalidPlate(
                f"new-energy plate {plate!r} ends with {serial[5]!r}; "
                "a large-vehicle new-energy plate ends with D or F"
            )
        return "new_energy_large"
    if serial[0] not in NEW_ENERGY_SMALL_FIRST:
        raise InvalidPlate(
            f"new-energy plate {plate!r} has serial starting with {serial[0]!r}; "
            "a small-vehicle new-energy serial starts with one of D A B C E F G H J K"
        )
    if not serial[2:].isdigit():
        raise InvalidPlate(
            f"new-energy plate {plate!r} must end with four digits, not {serial[2:]!r}"
        )
    return "new_energy_small"


@fast_init
@dataclass(frozen=True, slots=True)
class Plate:
    """A vehicle registration plate (号牌, GA 36-2018) in compact canonical form."""

    value: str
    kind: PlateKind

    def __post_init__(self) -> None:
        if not isinstance(self.value, str) or normalise_plate(self.value) != self.value:
            raise InvalidPlate(f"plate {self.value!r} is not in canonical form")
        if _plate_kind(self.value) != self.kind:
            raise InvalidPlate(f"plate {self.value!r} is not of kind {self.kind!r}")

    @classmethod
    def parse(cls, raw: object) -> Plate:
        if not isinstance(raw, str):
            raise InvalidPlate(f"plate must be a string, not {type(raw).__name__}")
        valid = _VALID_PLATE.fullmatch(raw)
        if valid is not None:  # typed in canonical form already, as most plates are
            value, kind = raw, valid.lastgroup
        else:
            value = normalise_plate(raw)
            kind = _plate_kind(value)
        # Both invariants hold by construction here; skip ``__post_init__`` checking them
        # again (every coverage question parses a plate).
        plate = object.__new__(cls)
        object.__setattr__(plate, "value", value)
        object.__setattr__(plate, "kind", kind)
        return plate

    @property
    def display(self) -> str:
        """The form printed on the plate itself: ``苏E·12345``."""
        return display_plate(self.value)

    def __str__(self) -> str:
        return self.value


VIN_CHARS = DIGITS + "ABCDEFGHJKLMNPRSTUVWXYZ"
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
# ISO 3779 transliteration: digits are themselves; A-H 1-8, J-N 1-5, P 7, R 9, S-Z 2-9.
_VIN_VALUES = {
    char: int(value)
    for char, value in zip(
        VIN_CHARS, DIGITS + "12345678" + "12345" + "79" + "23456789", strict=True
    )
}


def _check_vin_characters(vin: str, *, skip_check_position: bool) -> None:
    if _VALID_VIN_SHAPE.fullmatch(vin):
        return  # the common case, checked at C speed; the loop below explains failures
    if not vin:
        raise InvalidVin("VIN is empty")
    if len(vin) != 17:
        raise InvalidVin(f"VIN has {len(vin)} characters; a VIN has exactly 17")
    for index, char in enumerate(vin):
        if index == 8 and skip_check_position:
            continue
        if char in "IOQ":
            raise InvalidVin(f"VIN has {char!r} at position {index + 1}; VINs never use I, O or Q")
        if char not in VIN_CHARS:
            raise InvalidVin(
                f"VIN has {char!r} at position {index + 1}; only digits and the letters "
                "A-Z except I, O and Q are allowed"
            )


_VALID_VIN_SHAPE = re.compile(r"[A-HJ-NPR-Z0-9]{17}")


def vin_check_digit(vin17: str) -> str:
    """The ISO 3779 check character for a 17-character VIN (its position 9 is ignored)."""
    _check_vin_characters(vin17, skip_check_position=True)
    # Position 9 weighs 0; a neutral "0" there lets one C-level pass do the sum.
    values = map(_VIN_VALUES.__getitem__, f"{vin17[:8]}0{vin17[9:]}")
    total = sum(map(operator.mul, values, _VIN_WEIGHTS))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def mask_vin(vin: str) -> str:
    """What answers show of a VIN: all but the last six characters, which are an owner's
    verification factor (§3.1 ``vin_masked``)."""
    return f"{vin[:-6]}******"


def with_vin_check_digit(vin17: str) -> str:
    """``vin17`` with position 9 set to the right check digit (for tests and demo data)."""
    return f"{vin17[:8]}{vin_check_digit(vin17)}{vin17[9:]}"


@fast_init
@dataclass(frozen=True, slots=True)
class Vin:
    """A vehicle identification number (车辆识别代号, GB 16735 / ISO 3779)."""

    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, str):
            raise InvalidVin(f"VIN must be a string, not {type(self.value).__name__}")
        _check_vin_characters(self.value, skip_check_position=False)
        expected = vin_check_digit(self.value)
        if self.value[8] != expected:
            raise InvalidVin(
                f"VIN check digit (position 9) is {self.value[8]!r}, "
                f"but the other characters give {expected!r}"
            )

    @classmethod
    def parse(cls, raw: object) -> Vin:
        if not isinstance(raw, str):
            raise InvalidVin(f"VIN must be a string, not {type(raw).__name__}")
        return cls("".join(unicodedata.normalize("NFKC", raw).split()).upper())

    @property
    def masked(self) -> str:
        return mask_vin(self.value)

    def __repr__(self) -> str:
        return f"Vin({self.masked!r})"

    def __str__(self) -> str:
        return self.value


_RESIDENT_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CHINA_TIME = timezone(timedelta(hours=8))
_ID_NAMES = {"resident_id": "resident ID number", "uscc": "unified social credit code"}


def resident_id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of a GB 11643 resident ID number."""
    if len(first17) < 17 or not first17[:17].isdigit():
        raise InvalidIdNumber("a resident ID number must start with 17 digits")
    total = sum(map(operator.mul, map(int, first17[:17]), _RESIDENT_WEIGHTS))
    return "10X98765432"[total % 11]


def uscc_check_char(first17: str) -> str:
    """GB 32100 check character of a unified social credit code."""
    if len(first17) < 17 or any(c not in USCC_CHARS for c in first17[:17]):
        raise InvalidIdNumber(
            f"a unified social credit code must start with 17 characters from {USCC_CHARS}"
        )
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=False))
    return USCC_CHARS[(31 - total % 31) % 31]


def _as_id_type(id_type: object) -> IdType:
    for known in _ID_TYPES:
        if id_type == known:
            return known
    raise InvalidIdNumber(f"unknown id_type {id_type!r}; expected resident_id, uscc or other")


def _check_resident_id(value: str) -> None:
    for index, char in enumerate(value[:17]):
        if char not in DIGITS:
            raise InvalidIdNumber(
                f"resident ID number has {char!r} at position {index + 1}; "
                "the first 17 characters must be digits"
            )
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise InvalidIdNumber(
            "resident ID number birth date (positions 7-14) is not a real calendar date"
        ) from None
    if born.year < 1900:
        raise InvalidIdNumber("resident ID number birth year is before 1900")
    # Births are registered in China Standard Time, whatever the server's zone.
    if born > datetime.now(_CHINA_TIME).date():
        raise InvalidIdNumber("resident ID number birth date is in the future")


def _check_uscc(value: str) -> None:
    for index, char in enumerate(value):
        if char not in USCC_CHARS:
            raise InvalidIdNumber(
                f"unified social credit code has {char!r} at position {index + 1}; "
                "only digits and the letters A-Y except I, O, S, V and Z are allowed"
            )


@fast_init
@dataclass(frozen=True, slots=True)
class IdNumber:
    """An owner's identity number: resident ID (GB 11643), USCC (GB 32100) or other."""

    value: str
    id_type: IdType

    def __post_init__(self) -> None:
        _as_id_type(self.id_type)
        if not isinstance(self.value, str):
            raise InvalidIdNumber(f"ID number must be a string, not {type(self.value).__name__}")
        if self.id_type == "other":
            if not 1 <= len(self.value) <= 40 or not self.value.isprintable():
                raise InvalidIdNumber("ID number must be 1 to 40 printable characters")
            return
        name = _ID_NAMES[self.id_type]
        if len(self.value) != 18:
            raise InvalidIdNumber(f"{name} has {len(self.value)} characters; it must have 18")
        if self.id_type == "resident_id":
            _check_resident_id(self.value)
            expected = resident_id_check_char(self.value)
        else:
            _check_uscc(self.value)
            expected = uscc_check_char(self.value)
        if self.value[17] != expected:
            raise InvalidIdNumber(
                f"{name} check character (position 18) is {self.value[17]!r}, "
                f"but the first 17 characters give {expected!r}"
            )

    @classmethod
    def parse(cls, raw: object, id_type: str) -> IdNumber:
        if not isinstance(raw, str):
            raise InvalidIdNumber(f"ID number must be a string, not {type(raw).__name__}")
        value = "".join(unicodedata.normalize("NFKC", raw).split()).upper()
        return cls(value, _as_id_type(id_type))

    @property
    def masked(self) -> str:
        """What answers may show (§5.3); never the whole value, however short."""
        if self.id_type == "other":
            if len(self.value) <= 2:
                return "*" * len(self.value)
            return "*" * (len(self.value) - 2) + self.value[-2:]
        return self.value[:3] + "*" * (len(self.value) - 7) + self.value[-4:]

    def __repr__(self) -> str:
        return f"IdNumber({self.masked!r}, {self.id_type!r})"

    def __str__(self) -> str:
        return self.value
