"""Use cases of the partner banks: the bank-card real-name check ("four elements": name, passport
number, card number, the phone the bank keeps) behind a small interface; the implementation here
answers from the banks' account records in this database."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from workcard import clock
from workcard.banks.models import BankAccount


class CardCheck(Protocol):
    def four_elements(self, session: Session, *, name: str, passport_number: str, card_number: str,
                      phone: str) -> bool: ...  # fmt: skip


class AccountRecordsCheck:
    """True only when one card of the banks' records carries all four elements."""

    def four_elements(self, session: Session, *, name: str, passport_number: str, card_number: str,
                      phone: str) -> bool:  # fmt: skip
        row = find_card(session, card_number)
        return (
            row is not None
            and row.holder_name == name
            and row.passport_number == passport_number
            and row.phone == phone
        )


CHECK: CardCheck = AccountRecordsCheck()


def find_card(session: Session, card_number: str) -> BankAccount | None:
    return session.scalar(select(BankAccount).where(BankAccount.card_number == card_number))


def open_account(session: Session, *, bank: str, card_number: str, holder_name: str, passport_number: str,
                 phone: str, opened_at: dt.datetime | None = None) -> BankAccount:  # fmt: skip
    """A card the bank issued (demo data and tests stand in for the bank's own systems here)."""
    row = BankAccount(bank=bank, card_number=card_number, holder_name=holder_name, passport_number=passport_number,
                      phone=phone, opened_at=opened_at or clock.now())  # fmt: skip
    session.add(row)
    session.flush()
    return row
