"""Which of the eight intents of DESIGN §3 a question asks, by keyword rules.

Rules are regular expressions over the question in lower case with its plate cut out
(a plate's letters must not read as words). The first intent in ``PRIORITY`` with a
matching rule wins: a complaint that mentions a renewal is a dispute, a question about
what a lapse costs that mentions a date is about the lapse. A question about another
topic (traffic violations, annual inspection, a driving licence, a claim) is ``unknown``
unless it also names the insurance. A question with no rule matched is a status question
when it names a plate (``查一下苏E12345``, a bare plate) and ``unknown`` otherwise.

The rules were written against ``tests/data/assistant_corpus.jsonl``, whose accuracy the
suite measures (docs/DECISIONS.md, "Assistant").
"""

from __future__ import annotations

import re
from enum import StrEnum


class Intent(StrEnum):
    RENEWAL_STATUS = "renewal_status"
    EXPIRY_DATE = "expiry_date"
    INSURER = "insurer"
    HOW_TO_RENEW = "how_to_renew"
    LAPSE_CONSEQUENCES = "lapse_consequences"
    SUBSCRIBE = "subscribe"
    DISPUTE = "dispute"
    UNKNOWN = "unknown"

    @property
    def needs_vehicle(self) -> bool:
        """Answered from the vehicle's coverage (a verified look-up)."""
        return self in _VEHICLE_INTENTS


_VEHICLE_INTENTS = frozenset({Intent.RENEWAL_STATUS, Intent.EXPIRY_DATE, Intent.INSURER})


def _rules(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


_LAPSE_WORD = (
    r"脱保|断保|断了|过期|没买交强险|没有交强险|不交|忘续|没续|无保|"
    r"laps|expired|without insurance|uninsured|not renewing|don'?t renew|no insurance"
)

RULES: dict[Intent, re.Pattern[str]] = {
    Intent.DISPUTE: _rules(
        r"申诉|投诉|异议|纠正|纠错|有误|错了|不对|不一致|不一样|被别人|查不到|明明",
        r"显示.{0,6}(脱保|无记录|没有|过期)",
        r"dispute|complain|incorrect|wrong|mistake|missing|renewed but|still shows",
        r"no record but|but i (bought|renewed|paid)|\bis off\b",
        r"i (already )?renewed (on|last|yesterday)",
        r"显示的.{0,8}不是|不是我(买|投保|续)",
        r"shows? (as )?(lapsed|no record|expired)",
    ),
    Intent.SUBSCRIBE: _rules(
        r"提醒|订阅|退订|通知我|发短信|发邮件|告诉我一声",
        r"remind|notif|subscribe|text me|email me|send me an? (email|sms|text|message)|alert",
    ),
    Intent.LAPSE_CONSEQUENCES: _rules(
        rf"({_LAPSE_WORD}).*(怎么办|咋办|咋整|点算|会怎|会咋|后果|罚|扣分|扣车|影响|谁赔|还能开|还能补|会涨|没事吧|处罚)",
        r"后果|处罚|扣分|扣车|怎么罚|罚多少|罚不罚",
        rf"({_LAPSE_WORD}).*(上路|能开|能不能开)",
        rf"({_LAPSE_WORD}).*(what (happens|now|should|if)|fine|penalt|impound|who pays)",
        rf"(what (happens|if)|fine|penalt|impound|who pays).*({_LAPSE_WORD})",
        r"consequence|penalt|impound|drive without|driving without|driving uninsured",
        rf"can i (still )?drive.*({_LAPSE_WORD})",
    ),
    Intent.HOW_TO_RENEW: _rules(
        r"怎么续|怎样续|如何.{0,4}续|咋续|咋个续|点样续|怎么买|去哪.{0,2}买|哪里.{0,2}(买|续)",
        r"在哪.{0,2}续|续保(流程|渠道|手续)|渠道|材料|证件|资料|准备啥|准备什么|带什么",
        r"(在哪|哪里|去哪).{0,2}(交|办)|行驶证|身份证",
        r"(网上|手机上|线上).{0,4}(续|买)|提前.{0,4}续|咋弄|怎么弄|怎么办理|如何办理|去保险公司",
        r"how (do|can|to|2|should|would)( i| we)?( \w+)? (renew|buy|get)",
        r"how to (renew|buy|get)|where\b.*\b(buy|renew)",
        r"documents?|renew online|renewal process|how early|how soon can",
    ),
    Intent.INSURER: _rules(
        r"哪家|哪个公司|哪个保险|哪个insurance|谁家|承保|保险公司(是|叫|名称)|人保还是|平安还是",
        r"投的是哪|保的哪|公司是哪",
        r"which (\S+ )?(insurer|company|insurance company|保险公司)",
        r"who (is|'s) (the|my) insurer|who insure|who covers|insurer (of|for)|name of the insurer",
        r"insurance company|carrier|company .*bought|bought .* from",
    ),
    Intent.EXPIRY_DATE: _rules(
        r"什么时候|啥时候|啥子时候|么时候|几时|何时|哪天|几号|几月|好久到期|多久|几天|还剩",
        r"到期(时间|日|日期)|有效期|截止|保到|到什么时候|到啥时候|到哪天|期限",
        r"when|expire\b|expires|expiry|expiration|until when|valid until|days left|run out",
        r"end date|due for renewal|how long until|finish|coverage end",
    ),
    Intent.RENEWAL_STATUS: _rules(
        r"续保了|续了|续上|续好|续起|续咗|续宝|续保没|续保成功|续保情况|有没有续|是否.{0,3}续",
        r"要不要续|该续保|需要续|有效|在保|保着|在不在|有没有(交强险|保险)|买了没|买上了",
        r"脱保了吗|断保没|脱保没|过期(了)?(没|吗)|到期(了)?(没|吗)|生效了没|状态|查|管用|没断",
        r"renew|covered|insured|valid|active|in force|status|check|laps|ok\b|"
        r"have (valid )?insurance|have ctpl|need to renew",
    ),
}

PRIORITY = (
    Intent.DISPUTE,
    Intent.SUBSCRIBE,
    Intent.LAPSE_CONSEQUENCES,
    Intent.HOW_TO_RENEW,
    Intent.INSURER,
    Intent.EXPIRY_DATE,
    Intent.RENEWAL_STATUS,
)

OTHER_TOPIC = _rules(
    r"违章|年检|驾驶证|驾照|理赔|洗车|限行|摇号|车贷|解押|汽油|油价|写.{0,3}诗|你是谁|过户|停车",
    r"保养|车主是谁|天气|推荐",
    r"weather|violation|inspection|licen[cs]e|claim|joke|petrol|gas price|\bpark\b|who owns",
    r"owner of",
)
"""Topics this registry does not answer."""

INSURANCE_WORDS = _rules(
    r"交强|保险|保单|续保|脱保|断保|投保|承保|在保|insur|ctpl|policy|coverage|covered|laps"
)


def classify(text: str, *, has_plate: bool) -> Intent:
    """The intent of ``text`` (lower case, plate cut out)."""
    if OTHER_TOPIC.search(text) and not INSURANCE_WORDS.search(text):
        return Intent.UNKNOWN
    for intent in PRIORITY:
        if RULES[intent].search(text):
            return intent
    return Intent.RENEWAL_STATUS if has_plate else Intent.UNKNOWN
