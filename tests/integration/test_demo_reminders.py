"""`ctplhub demo`'s reminders: a mail catcher keeps what one pass sends to the sample
vehicles it subscribed, as .eml files a newcomer can open."""

from __future__ import annotations

import io
from email import message_from_bytes, policy
from email.message import EmailMessage

from rich.console import Console

from ctplhub.bootstrap import Container
from ctplhub.cli.demo import _catchers, demo_reminders, load_demo, print_reminders
from notify_fixtures import free_port


def test_the_demo_subscribes_samples_and_a_reminder_arrives(container: Container) -> None:
    quiet = Console(quiet=True)
    report = load_demo(container, 300, console=quiet, progress=False)
    try:
        reminders = demo_reminders(container, report, console=quiet, port=free_port())
    finally:
        while _catchers:
            _catchers.pop().stop()
    assert len(reminders["subscribed"]) >= 2  # the expiring and lapsed samples
    assert reminders["sent"] >= 1
    mails = sorted((container.settings.home / "mail").glob("*.eml"))
    assert len(mails) == reminders["sent"]
    first = message_from_bytes(mails[0].read_bytes(), policy=policy.default)
    assert isinstance(first, EmailMessage)
    assert first["To"].endswith("@demo.ctplhub.example")
    assert "/unsubscribe?token=" in first["List-Unsubscribe"]
    plates = {p for p in reminders["subscribed"]}
    assert any(p in str(first["Subject"]) for p in plates)
    shown = io.StringIO()
    print_reminders(reminders, Console(file=shown, width=400))
    assert f"{reminders['sent']} sent" in shown.getvalue()
    assert "/mail/" in shown.getvalue()
