"""Reminder delivery (DESIGN §7): the channels and the outbox worker.

``channels`` (what a channel is), ``email`` / ``webhook`` / ``sms`` (SMTP, signed POSTs,
the SMS gateway adapter), ``content`` and ``templates/`` (the words, Chinese and
English), ``webhook_signing`` (the HMAC a receiver checks, docs/webhooks.md),
``backoff`` (when a failure is tried again), ``delivery`` (one pass over the outbox),
``worker`` (``ctplhub worker``'s loop), ``metrics``, ``mail_catcher`` (the demo's) and
``wiring`` (built from the settings). The outbox contract is docs/reminders-contract.md.
"""
