"""Every sentence the assistant says, in Chinese and English: data, not logic.

``answers.py`` picks a template by key and fills in named fields; no text lives there.
(The project has no Babel catalogue for API text; when the web pages get one, these
templates can move into it key by key.)
"""

from __future__ import annotations

from typing import Final

PHRASES: Final[dict[str, dict[str, str]]] = {
    "zh": {
        # What the registry needs before it can answer about a vehicle.
        "need_plate": "请告诉我车牌号，例如“苏E12345的交强险续保了吗？”，"
        "并提供车架号（VIN）后六位用于核验。",
        "need_plate_ambiguous": "“{syllable}”可能指{options}，请直接写出省份简称的汉字，"
        "例如“{example}”。",
        "need_factor": "要查询{plate}的{topic}，需要先核验身份：请提供该车车架号（VIN）后六位。",
        "topic_renewal_status": "续保状态",
        "topic_expiry_date": "到期时间",
        "topic_insurer": "承保公司",
        # Answers from the signed coverage answer.
        "status_RENEWED": "{plate}的交强险已续保：续保保单已接上，保障至{until}（北京时间）。",
        "status_ACTIVE": "{plate}的交强险保障中，保障至{until}（北京时间），还有{days}天到期，"
        "尚未查到续保记录。",
        "status_EXPIRING_SOON": "{plate}的交强险即将到期：保障至{until}（北京时间），"
        "还剩{days}天，尚未查到续保记录，请尽快续保。",
        "status_PENDING_START": "{plate}目前没有生效中的交强险；已有一张保单将于{start}"
        "（北京时间）起生效，生效前车辆不在保障中。",
        "status_LAPSED": "{plate}的交强险已脱保：保障已于{since}（北京时间）结束，"
        "已脱保{days_lapsed}天。未投保交强险的机动车不得上道路行驶，请尽快投保。",
        "status_NO_RECORD": "平台没有{plate}生效的交强险记录。"
        "如您已投保，请联系承保的保险公司核实。",
        "expiry": "{plate}的交强险保障至{until}（北京时间），还有{days}天。",
        "expiry_renewed": "{plate}的交强险已续保，连续保障至{until}（北京时间），还有{days}天。",
        "insurer": "{plate}当前的交强险由{insurer}承保（保单号{policy}），"
        "保障至{until}（北京时间）。",
        "insurer_next": "续保保单由{insurer}承保，自{start}（北京时间）起生效。",
        "caveat": "提示：有保险公司的数据可能尚未同步，最近办理的续保也许还未显示，"
        "请以保险公司出具的保单为准。",
        # Questions that need no vehicle data.
        "how_to_renew": "续保交强险：可在保险公司的官方App、网站、客服电话或营业网点办理，"
        "也可通过车商或正规代理。一般需要行驶证、车主身份证件（单位车辆需营业执照）和上一年保单信息；"
        "最早可在到期前约3个月办理。新保单生效后，本平台通常在保险公司上报后即可查到。",
        "lapse_consequences": "交强险脱保后，车辆不得上道路行驶：被查到将扣留车辆，"
        "并处应缴最低保费两倍的罚款；脱保期间发生事故，本应由交强险赔付的部分需自行承担。请尽快投保。",
        "subscribe": "可以订阅到期提醒：在“订阅提醒”页面（或 POST /v1/subscriptions）"
        "填写车牌号、车架号后六位和联系方式（短信、邮件或网络回调），"
        "我们会在到期前30天、7天、1天和脱保后1天提醒您；提醒中的链接可随时退订。",
        "dispute": "如果查询结果与您的保单不符（例如已续保却显示脱保），可以提交异议："
        "在“提交异议”页面（或 POST /v1/disputes）填写车牌号、车架号后六位和情况说明，"
        "异议会转给承保的保险公司，3个工作日内处理，逾期将提交监管部门；凭回执可随时查询进度。",
        "unknown": "我可以回答交强险相关的问题：是否已续保、什么时候到期、由哪家保险公司承保、"
        "怎么续保、脱保的后果、到期提醒和异议。例如：“苏E12345的交强险续保了吗？”",
    },
    "en": {
        "need_plate": 'Please tell me the plate, for example "Is 苏E12345 renewed?", and give '
        "the last 6 characters of the vehicle's VIN so that I can verify you.",
        "need_plate_ambiguous": '"{syllable}" could mean {options}; please write the province '
        'as its Chinese character, for example "{example}".',
        "need_factor": "To tell you the {topic} of {plate}, I first need to verify you: please "
        "give the last 6 characters of the vehicle's VIN.",
        "topic_renewal_status": "renewal status",
        "topic_expiry_date": "expiry date",
        "topic_insurer": "insurer",
        "status_RENEWED": "The CTPL of {plate} is renewed: the next policy is in place, and it "
        "is covered until {until} (Beijing time).",
        "status_ACTIVE": "The CTPL of {plate} is active until {until} (Beijing time), {days} "
        "days from now; no renewal is on record yet.",
        "status_EXPIRING_SOON": "The CTPL of {plate} expires soon: covered until {until} "
        "(Beijing time), {days} days left, and no renewal is on record yet. Please renew soon.",
        "status_PENDING_START": "{plate} has no CTPL in force now; a policy starts on {start} "
        "(Beijing time), and the vehicle is not covered before then.",
        "status_LAPSED": "The CTPL of {plate} has lapsed: cover ended on {since} (Beijing "
        "time), {days_lapsed} days ago. A vehicle without CTPL may not be driven on public "
        "roads; please buy cover now.",
        "status_NO_RECORD": "The registry holds no CTPL in force for {plate}. If you have "
        "bought one, please check with your insurer.",
        "expiry": "The CTPL of {plate} covers it until {until} (Beijing time), {days} days "
        "from now.",
        "expiry_renewed": "The CTPL of {plate} is renewed, with unbroken cover until {until} "
        "(Beijing time), {days} days from now.",
        "insurer": "The current CTPL of {plate} is with {insurer} (policy {policy}), covering "
        "it until {until} (Beijing time).",
        "insurer_next": "The renewal is with {insurer}, from {start} (Beijing time).",
        "caveat": "Note: an insurer's data may not be synchronised yet, so a recent renewal "
        "may not show; your insurer's policy document prevails.",
        "how_to_renew": "To renew your CTPL (交强险), use an insurer's official app, website, "
        "hotline or branch, or a car dealer or licensed agent. You usually need the vehicle "
        "licence (行驶证), the owner's ID (a business licence for a company car) and last "
        "year's policy details; you can renew up to about 3 months before expiry. The "
        "registry shows the new policy once the insurer reports it.",
        "lapse_consequences": "Without CTPL a vehicle may not be driven on public roads: if "
        "caught, the vehicle is held and the fine is twice the minimum premium due; in an "
        "accident while lapsed, you pay what CTPL would have paid. Please buy cover now.",
        "subscribe": "You can subscribe to expiry reminders on the reminders page (or POST "
        "/v1/subscriptions) with the plate, the last 6 characters of the VIN and a contact "
        "(SMS, e-mail or webhook). Reminders come 30, 7 and 1 day before expiry and 1 day "
        "after a lapse; every reminder has a link to unsubscribe.",
        "dispute": "If an answer does not match your policy (say you renewed but it shows "
        "lapsed), file a dispute on the dispute page (or POST /v1/disputes) with the plate, "
        "the last 6 characters of the VIN and what is wrong. It goes to the insurer, which "
        "has 3 working days before it is escalated to the regulator; your receipt lets you "
        "follow it.",
        "unknown": "I can answer questions about CTPL (交强险): whether it is renewed, when it "
        "expires, which insurer covers it, how to renew, what a lapse costs, reminders and "
        'disputes. For example: "Is 苏E12345 renewed?"',
    },
}

PROVINCE_NAMES_ZH: Final[dict[str, str]] = {
    "渝": "渝（重庆）",
    "豫": "豫（河南）",
    "冀": "冀（河北）",
    "吉": "吉（吉林）",
    "津": "津（天津）",
    "晋": "晋（山西）",
    "赣": "赣（江西）",
    "甘": "甘（甘肃）",
    "桂": "桂（广西）",
    "贵": "贵（贵州）",
}
PROVINCE_NAMES_EN: Final[dict[str, str]] = {
    "渝": "渝 (Chongqing)",
    "豫": "豫 (Henan)",
    "冀": "冀 (Hebei)",
    "吉": "吉 (Jilin)",
    "津": "津 (Tianjin)",
    "晋": "晋 (Shanxi)",
    "赣": "赣 (Jiangxi)",
    "甘": "甘 (Gansu)",
    "桂": "桂 (Guangxi)",
    "贵": "贵 (Guizhou)",
}
OR: Final[dict[str, str]] = {"zh": "或", "en": " or "}
