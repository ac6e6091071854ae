"""The partner banks' account records: what a bank keeps of each card it issued. The bank-card
real-name check (SPEC E3, E4) is answered from these rows, as the bank's own switch would answer it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from workcard.db import Base


class BankAccount(Base):
    __tablename__ = "bank_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    bank: Mapped[str] = mapped_column(String(60))
    card_number: Mapped[str] = mapped_column(String(19), unique=True)
    holder_name: Mapped[str] = mapped_column(String(120))
    passport_number: Mapped[str] = mapped_column(String(20))
    phone: Mapped[str] = mapped_column(String(11))  # the phone number the bank keeps
    opened_at: Mapped[dt.datetime]
