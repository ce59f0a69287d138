"""Tables and fake identities behind the demo fleet (``demo_fleet``).

Kept apart so the fleet module reads as a set of stories rather than a list of names.
Everything here is realistic in shape (real administrative division codes, real
manufacturer WMIs, valid check characters) and fictitious in substance.

Plates and VINs are bijections of an integer key (a vehicle's index), scrambled so that
neighbours look unrelated: distinct keys give distinct values, so a fleet of any size is
unique without remembering what it has handed out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from ctplhub.domain.identifiers import (
    SERIAL_CHARS,
    VIN_CHARS,
    resident_id_check_char,
    uscc_check_char,
    with_vin_check_digit,
)


@dataclass(frozen=True, slots=True)
class Region:
    """A plate prefix and the administrative division its policies are written in."""

    province: str
    letter: str
    region_code: str
    city: str
    weight: int


REGIONS: tuple[Region, ...] = (
    Region("京", "A", "110105", "北京", 6),
    Region("京", "N", "110108", "北京", 4),
    Region("京", "Q", "110106", "北京", 2),
    Region("沪", "A", "310115", "上海", 5),
    Region("沪", "D", "310104", "上海", 3),
    Region("粤", "A", "440106", "广州", 5),
    Region("粤", "B", "440300", "深圳", 6),
    Region("粤", "S", "441900", "东莞", 3),
    Region("苏", "A", "320104", "南京", 3),
    Region("苏", "E", "320500", "苏州", 5),
    Region("浙", "A", "330106", "杭州", 5),
    Region("浙", "B", "330212", "宁波", 3),
    Region("川", "A", "510104", "成都", 5),
    Region("鄂", "A", "420106", "武汉", 4),
    Region("鲁", "A", "370102", "济南", 2),
    Region("鲁", "B", "370202", "青岛", 3),
    Region("渝", "A", "500103", "重庆", 3),
    Region("湘", "A", "430104", "长沙", 2),
    Region("闽", "D", "350203", "厦门", 2),
    Region("陕", "A", "610113", "西安", 2),
)
REGION_WEIGHTS: tuple[int, ...] = tuple(region.weight for region in REGIONS)


@dataclass(frozen=True, slots=True)
class Profile:
    """What kind of vehicle, how it is used, who owns it and its base CTPL premium."""

    vehicle_type: str
    use_nature: str
    base_premium: int  # CNY, before the no-claims floating factor
    company_owned: bool
    wmis: tuple[str, ...]
    weight: int


_CARS = ("LSV", "LFV", "LGB", "LHG", "LVS", "LSG", "LBV", "LFM", "LDC", "LVG")
_NEV_CARS = ("LRW", "LC0", "LGX", "LNB", "LSJ")
_TRUCKS = ("LFW", "LZZ", "LGA", "LZG")
_BUSES = ("LKL", "LZY")

PROFILES: tuple[Profile, ...] = (
    Profile("passenger_small", "family", 950, False, _CARS + _NEV_CARS, 62),
    Profile("passenger_small", "family", 1100, False, _CARS, 10),  # 6 to 9 seats
    Profile("passenger_small", "non_operating", 1000, True, _CARS, 9),
    Profile("passenger_small", "operating", 1800, True, _CARS + _NEV_CARS, 4),  # taxi
    Profile("passenger_small", "operating", 1800, False, _NEV_CARS, 3),  # ride-hailing
    Profile("truck", "non_operating", 1200, True, _TRUCKS, 5),
    Profile("truck", "operating", 1850, True, _TRUCKS, 4),
    Profile("passenger_large", "operating", 2560, True, _BUSES, 2),
    Profile("passenger_large", "non_operating", 1270, True, _BUSES, 1),
)
PROFILE_WEIGHTS: tuple[int, ...] = tuple(profile.weight for profile in PROFILES)
NEV_WMIS = frozenset(_NEV_CARS)

# Policy number layouts; each yields at most 40 printable ASCII characters.
POLICY_NO_FORMATS: dict[str, str] = {
    "PICC": "PDAA{year}{region}{seq:08d}",
    "PINGAN": "1{region}0390{year}{seq:08d}",
    "CPIC": "ASHZ{region}{year}Q{seq:08d}",
    "CHINALIFE": "8{region}{year}0{seq:08d}",
    "CCIC": "DZA{year}{region}{seq:08d}",
}

SURNAMES = (  # the most common, one character each
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许"
    "韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈"
)
MALE_NAMES = (
    "伟", "强", "磊", "军", "洋", "勇", "杰", "涛", "明", "超", "刚", "平",
    "辉", "鹏", "华", "飞", "斌", "宇", "浩然", "俊杰", "子轩", "宇轩", "志强", "建华",
    "国平", "晓东", "文博", "思远", "一鸣", "家豪", "天佑", "振宇", "建国", "海涛",
)  # fmt: skip
FEMALE_NAMES = (
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "婷", "雪", "琳", "颖",
    "倩", "秀英", "桂英", "秀兰", "玉兰", "欣怡", "梓萱", "雨桐", "子涵", "诗涵", "佳怡", "嘉怡",
    "晓燕", "丽华", "慧敏", "思琪", "雅婷", "若曦",
)  # fmt: skip
_COMPANY_WORDS = (
    "恒达", "华信", "顺通", "金桥", "宏远", "新锐", "博瑞", "嘉禾", "鼎盛", "天成", "中联", "锦程",
    "瑞丰", "远航",
)  # fmt: skip
_TRADES: dict[str, tuple[str, ...]] = {
    "passenger_small": ("科技", "贸易", "文化传媒", "建筑设计", "网络科技"),
    "taxi": ("出租汽车", "汽车租赁", "汽车服务"),
    "truck": ("物流", "运输", "建设工程", "供应链管理"),
    "passenger_large": ("公共交通", "旅游客运", "客运"),
}
_MOBILE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
    "153", "155", "156", "157", "158", "159", "166", "173", "175", "176", "177", "180",
    "181", "182", "183", "185", "186", "187", "188", "189", "191", "198", "199",
)  # fmt: skip


def person_name(rng: random.Random, male: bool) -> str:
    return rng.choice(SURNAMES) + rng.choice(MALE_NAMES if male else FEMALE_NAMES)


def resident_id(rng: random.Random, region_code: str, male: bool, today: date) -> str:
    """A GB 11643 number: address code, a birth date 22 to 68 years back, odd sequence
    for men and even for women, and the MOD 11-2 check character."""
    born = today - timedelta(days=rng.randint(22 * 366, 68 * 365))
    sequence = rng.randrange(1, 500) * 2 + (1 if male else 0)
    first17 = f"{region_code}{born:%Y%m%d}{sequence:03d}"
    return first17 + resident_id_check_char(first17)


def company_name(rng: random.Random, city: str, profile: Profile) -> str:
    taxi = profile.vehicle_type == "passenger_small" and profile.use_nature == "operating"
    trade = rng.choice(_TRADES["taxi" if taxi else profile.vehicle_type])
    return f"{city}{rng.choice(_COMPANY_WORDS)}{trade}有限公司"


def uscc(rng: random.Random, region_code: str) -> str:
    """A GB 32100 code of an enterprise ("91"), whose organisation code (positions 9-17)
    carries its own GB 11714 check character, then the GB 32100 check character."""
    body = "".join(rng.choice("0123456789") for _ in range(8))
    weighted = sum(int(c) * w for c, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    org_check = 11 - weighted % 11
    org_code = body + {10: "X", 11: "0"}.get(org_check, str(org_check))
    first17 = f"91{region_code}{org_code}"
    return first17 + uscc_check_char(first17)


def mobile_phone(rng: random.Random) -> str:
    return rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def owner(rng: random.Random, profile: Profile, region: Region, today: date) -> dict[str, str]:
    """The owner fields of an event: a company for company cars, else a person."""
    if profile.company_owned:
        name = company_name(rng, region.city, profile)
        id_type, number = "uscc", uscc(rng, region.region_code)
    else:
        male = rng.random() < 0.6
        born_in = region if rng.random() < 0.75 else rng.choice(REGIONS)
        name, id_type = person_name(rng, male), "resident_id"
        number = resident_id(rng, born_in.region_code, male, today)
    return {
        "owner_name": name,
        "owner_id_type": id_type,
        "owner_id_number": number,
        "owner_phone": mobile_phone(rng),
    }


# Primes, so coprime with every key space below; plates and VINs use different ones so
# that a plate's digits never repeat in its VIN.
_PLATE_PRIME, _VIN_PRIME = 2_654_435_761, 3_266_489_917
_ORDINARY_RADIX = (34, 34, 10, 34, 10)  # 粤B·AK3F7: letters in up to three of five places
ORDINARY_SPACE = 34**3 * 10**2
_SMALL_NEV_SPACE = 2 * 34 * 10**4  # D/F, a letter or digit, four digits
_LARGE_NEV_SPACE = 10**5 * 2  # five digits, D/F
_VIN_SERIALS = 10**6
_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"  # VIN position 10, from 2010 = A


def _scramble(key: int, space: int, seed: int, prime: int = _PLATE_PRIME) -> int:
    return (key * prime + seed * 7_919) % space


def plate(region: Region, key: int, seed: int, *, nev: bool, large_vehicle: bool) -> str:
    """Display form of plate number ``key`` (below ``ORDINARY_SPACE``).

    Each kind has its own shape, so plates of distinct keys never collide; a new-energy
    plate falls back to an ordinary one once its smaller key space is used up.
    """
    prefix = f"{region.province}{region.letter}·"
    if nev and not large_vehicle and key < _SMALL_NEV_SPACE:
        rest, tail = divmod(_scramble(key, _SMALL_NEV_SPACE, seed), 10**4)
        return f"{prefix}{'DF'[rest // 34]}{SERIAL_CHARS[rest % 34]}{tail:04d}"
    if nev and large_vehicle and key < _LARGE_NEV_SPACE:
        head, last = divmod(_scramble(key, _LARGE_NEV_SPACE, seed), 2)
        return f"{prefix}{head:05d}{'DF'[last]}"
    n, serial = _scramble(key, ORDINARY_SPACE, seed), ""
    for radix in reversed(_ORDINARY_RADIX):
        n, digit = divmod(n, radix)
        serial = SERIAL_CHARS[digit] + serial  # SERIAL_CHARS starts with the ten digits
    return prefix + serial


def vin(rng: random.Random, key: int, seed: int, wmi: str, model_year: int) -> str:
    """A VIN with a valid check digit whose last six are distinct for keys below 10**6;
    the plant code (position 11) keeps larger keys distinct too."""
    serial = _scramble(key % _VIN_SERIALS, _VIN_SERIALS, seed, _VIN_PRIME)
    plant = VIN_CHARS[(serial + key // _VIN_SERIALS) % len(VIN_CHARS)]
    descriptor = "".join(rng.choices(VIN_CHARS, k=5))
    year = _YEAR_CODES[(model_year - 2010) % len(_YEAR_CODES)]
    return with_vin_check_digit(f"{wmi}{descriptor}0{year}{plant}{serial:06d}")
