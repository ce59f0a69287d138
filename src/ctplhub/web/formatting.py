"""Turn a coverage answer (DESIGN §3.1) into what an owner reads on the page.

The service answers with instants and status codes; people read 年月日 in Beijing time
and a sentence that says what the status means for them. Everything here is a pure
function of the typed answer, so the page template stays free of logic and these rules
can be tested without a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ctplhub.domain.coverage import CoverageStatus
from ctplhub.domain.freshness import Caveat
from ctplhub.domain.instants import BEIJING
from ctplhub.services.check_coverage import FullAnswer, PolicyView

# Colour classes of the status banner (site.css): the status is shown in words too, so
# colour is never the only signal.
STATUS_TONE = {
    "RENEWED": "green",
    "ACTIVE": "green",
    "EXPIRING_SOON": "amber",
    "PENDING_START": "amber",
    "LAPSED": "red",
    "NO_RECORD": "grey",
}

_CERTIFICATION_ZH = {"revoked": "已被撤销", "suspended": "已被暂停"}


def beijing(value: datetime | None) -> str:
    """An instant as people in China read it: ``2026年3月1日 00:00``, Beijing time."""
    if value is None:
        return "—"
    at = value.astimezone(BEIJING)
    return f"{at.year}年{at.month}月{at.day}日 {at:%H:%M}"


def _days(count: int | None) -> str:
    if count is None:
        return ""
    return "不到 1 天" if count < 1 else f"{count} 天"


@dataclass(frozen=True, slots=True)
class AnswerView:
    """One answer, ready to print: a headline, sentences, facts and warnings."""

    status: str
    status_text: str
    tone: str
    summary: list[str]
    facts: list[tuple[str, str]]
    warnings: list[str] = field(default_factory=list)


def _summary(answer: FullAnswer) -> list[str]:
    status = answer.status
    current, nxt = answer.current_policy, answer.next_policy
    until = beijing(answer.covered_until)
    days = _days(answer.days_to_expiry)
    if status is CoverageStatus.RENEWED and current is not None and nxt is not None:
        return [
            f"续保保单已接上，保障至 {until}（北京时间），还有 {days}。",
            f"本期保单至 {beijing(current.coverage_end)} 结束，续保保单"
            f"（{nxt.insurer_code}）自 {beijing(nxt.coverage_start)} 起生效。",
        ]
    if status is CoverageStatus.ACTIVE:
        return [f"保障至 {until}（北京时间），还有 {days}到期。"]
    if status is CoverageStatus.EXPIRING_SOON:
        return [
            f"保障至 {until}（北京时间），剩余 {days}。",
            "尚未查到续保记录，请尽快联系保险公司续保。",
        ]
    if status is CoverageStatus.PENDING_START and nxt is not None:
        return [
            "目前没有生效中的交强险。",
            f"已有一张保单（{nxt.insurer_code}）将于 "
            f"{beijing(nxt.coverage_start)}（北京时间）起生效，生效前车辆不在保障中。",
        ]
    if status is CoverageStatus.LAPSED:
        return [
            f"交强险已于 {beijing(answer.lapsed_since)}（北京时间）到期，"
            f"已脱保 {_days(answer.days_lapsed)}。",
            "未投保交强险的机动车不得上道路行驶，请尽快投保。",
        ]
    return ["平台没有这辆车生效的交强险记录。如您已投保，请联系承保的保险公司核实。"]


def _period(policy: PolicyView) -> str:
    return f"{beijing(policy.coverage_start)} 至 {beijing(policy.coverage_end)}"


def _facts(answer: FullAnswer) -> list[tuple[str, str]]:
    facts = [("号牌", answer.plate.display), ("车架号", answer.vin_masked)]
    current = answer.current_policy
    if current:
        facts += [
            ("承保公司", current.insurer_name or current.insurer_code),
            ("保单号", current.policy_no_masked),
            ("保险期间", _period(current)),
        ]
    nxt = answer.next_policy
    if nxt:
        label = "续保保单" if answer.status is CoverageStatus.RENEWED else "待生效保单"
        facts.append((label, f"{nxt.insurer_code}：{_period(nxt)}"))
    facts.append(("查询时间", f"{beijing(answer.as_of)}（北京时间）"))
    return facts


def _caveat_text(caveat: Caveat, last_sync: dict[str, datetime | None]) -> str:
    insurer = caveat.insurer_code or ""
    if caveat.code == "stale_insurer":
        synced = last_sync.get(insurer)
        since = f"最近一次同步于 {beijing(synced)}" if synced else "尚未同步过数据"
        return (
            f"保险公司 {insurer} {since}，此后在该公司办理的续保可能还未显示。"
            "如您已续保，请以保险公司出具的保单为准。"
        )
    if caveat.code in ("insurer_revoked", "insurer_suspended"):
        state = _CERTIFICATION_ZH[caveat.code.removeprefix("insurer_")]
        return f"本结果依据保险公司 {insurer} 的保单，该公司的平台接入资格{state}。"
    return caveat.message


def _warnings(answer: FullAnswer) -> list[str]:
    last_sync = {s.insurer_code: s.last_sync_at for s in answer.sources}
    warnings = [_caveat_text(c, last_sync) for c in answer.caveats]
    if answer.duplicate_coverage:
        warnings.append("发现重复投保：不同保险公司的保单保障期间有重叠，可联系保险公司退保其一。")
    return warnings


def describe_answer(answer: FullAnswer) -> AnswerView:
    return AnswerView(
        status=answer.status.value,
        status_text=answer.status.text_zh,
        tone=STATUS_TONE.get(answer.status.value, "grey"),
        summary=_summary(answer),
        facts=_facts(answer),
        warnings=_warnings(answer),
    )
