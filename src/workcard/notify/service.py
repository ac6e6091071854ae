"""Text messages. ``Gateway`` is the interface an operator's SMS gateway sits behind; ``Outbox``, the
implementation here, keeps each message in the ``sms_message`` table, where ``workcard sms`` reads
them back. It writes in the caller's transaction, so a message is sent only if the change it tells of
commits."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from workcard import clock
from workcard.notify.models import SmsMessage


class Gateway(Protocol):
    def send(self, session: Session, *, phone: str, body: str) -> None: ...


class Outbox:
    def send(self, session: Session, *, phone: str, body: str) -> None:
        session.add(SmsMessage(phone=phone, body=body, sent_at=clock.now()))


GATEWAY: Gateway = Outbox()


def sent(session: Session, *, phone: str | None = None, limit: int = 20) -> list[SmsMessage]:
    """The newest messages of the outbox, to one number or to all."""
    stmt = select(SmsMessage).order_by(SmsMessage.id.desc()).limit(limit)
    if phone:
        stmt = stmt.where(SmsMessage.phone == phone)
    return list(session.scalars(stmt))
