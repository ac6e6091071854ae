from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from workcard.db import Base


class Employer(Base):
    __tablename__ = "employer"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    uscc: Mapped[str] = mapped_column(String(18), unique=True)  # unified social credit code
    province: Mapped[str] = mapped_column(String(2))  # GB/T 2260 province code, e.g. "12" Tianjin
    city: Mapped[str] = mapped_column(String(80))
    address: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime]


class Foreigner(Base):
    __tablename__ = "foreigner"
    __table_args__ = (UniqueConstraint("nationality", "passport_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The employer that registered the person and currently employs them (SPEC X4).
    employer_id: Mapped[int] = mapped_column(ForeignKey("employer.id"), index=True)
    passport_name: Mapped[str] = mapped_column(String(120))
    chinese_name: Mapped[str | None] = mapped_column(String(60))
    nationality: Mapped[str] = mapped_column(String(3))
    passport_number: Mapped[str] = mapped_column(String(20))
    passport_expiry: Mapped[dt.date]
    date_of_birth: Mapped[dt.date]
    sex: Mapped[str] = mapped_column(String(1))
    photo: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)  # read only where shown
    created_at: Mapped[dt.datetime]
    version: Mapped[int] = mapped_column(default=1)


class Application(Base):
    __tablename__ = "application"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    employer_id: Mapped[int] = mapped_column(ForeignKey("employer.id"), index=True)
    foreigner_id: Mapped[int] = mapped_column(ForeignKey("foreigner.id"), index=True)
    permit_id: Mapped[int | None] = mapped_column(ForeignKey("permit.id"), index=True)
    category: Mapped[str | None] = mapped_column(String(1))
    position: Mapped[str | None] = mapped_column(String(120))
    work_location: Mapped[str | None] = mapped_column(String(200))
    valid_from: Mapped[dt.date | None]
    valid_until: Mapped[dt.date | None]
    # Modification: a new employer (by USCC) or a new passport.
    new_employer_id: Mapped[int | None] = mapped_column(ForeignKey("employer.id"))
    new_passport_number: Mapped[str | None] = mapped_column(String(20))
    new_passport_expiry: Mapped[dt.date | None]
    reason: Mapped[str | None] = mapped_column(Text)  # the employer's reason (cancellation)
    decision_reason: Mapped[str | None] = mapped_column(Text)  # the officer's reason (rejection)
    created_by: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[dt.datetime]
    submitted_at: Mapped[dt.datetime | None]
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    decided_at: Mapped[dt.datetime | None]
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class Permit(Base):
    __tablename__ = "permit"
    __table_args__ = (
        # The expiry job reads only the rows that are due.
        Index(
            "ix_permit_due",
            "valid_until",
            postgresql_where=text("status = 'valid'"),
            sqlite_where=text("status = 'valid'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    foreigner_id: Mapped[int] = mapped_column(ForeignKey("foreigner.id"), index=True)
    employer_id: Mapped[int] = mapped_column(ForeignKey("employer.id"), index=True)
    category: Mapped[str] = mapped_column(String(1))
    position: Mapped[str] = mapped_column(String(120))
    work_location: Mapped[str] = mapped_column(String(200))
    valid_from: Mapped[dt.date]
    valid_until: Mapped[dt.date]
    status: Mapped[str] = mapped_column(String(16))
    # Issued on paper before 2024-12-01 (SPEC W3) and not yet moved to the new process.
    paper: Mapped[bool] = mapped_column(default=False)
    issued_at: Mapped[dt.datetime]
    cancelled_at: Mapped[dt.datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(default=1)


class PermitSerial(Base):
    """The next serial per province and year, for permit numbers."""

    __tablename__ = "permit_serial"

    province: Mapped[str] = mapped_column(String(2), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    last: Mapped[int]


class Letter(Base):
    """One version of a permit's notification letter (SPEC W2); older versions are kept."""

    __tablename__ = "letter"
    __table_args__ = (UniqueConstraint("permit_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    permit_id: Mapped[int] = mapped_column(ForeignKey("permit.id"), index=True)
    version: Mapped[int]
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
