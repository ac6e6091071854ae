"""Use cases of the e-card account (SPEC E1, E2, E3, E5): registration with the passport name and the
permit number, facial recognition against the photo on file, log-in, and what the holder sees of
their permit's checks. Services never commit; the request owns the transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from workcard import audit, clock, images
from workcard.banks import rules as bank_rules
from workcard.banks import service as banks
from workcard.config import get_settings
from workcard.credentials import service as credentials
from workcard.ecard import faces, liveness
from workcard.ecard.liveness import Action, Outcome
from workcard.ecard.models import EcardAccount, EcardSession, FaceAttempt, LivenessChallenge, SmsCode
from workcard.errors import Conflict, Forbidden, InvalidInput, TooManyRequests, Unauthorized
from workcard.iam import limits
from workcard.iam import service as iam
from workcard.iam.passwords import character_kinds, dummy_hash, hash_password, verify_password
from workcard.notify import service as notify
from workcard.permits import service as permits
from workcard.permits.models import Foreigner, Permit
from workcard.web.vocabulary import N_

MAX_FACE_FAILURES = 6  # SPEC E3: then the bank card
FACE_SESSION = dt.timedelta(minutes=30)
CHALLENGE_LIFE = dt.timedelta(minutes=3)
FRAME_MAX_BYTES = 3_000_000
FRAME_MAX_PIXELS = 4_000_000
SMS_CODE_LIFE = dt.timedelta(minutes=5)
SMS_CODE_TRIES = 5

PENDING = "face_pending"
ACTIVE = "active"
FACE = "face"
HOLDER = "holder"

_NO_MATCH = N_(
    "The name and permit number do not match a work permit. Write the name exactly as in your passport, "
    "with the same spaces and symbols, and the permit number as on your notification letter."
)
_PERMIT_STATE = {
    "not_yet_valid": N_("Your work permit has not started yet. Registration opens on its first day."),
    "expired": N_("Your work permit has expired; an e-card can only be registered with a valid permit."),
    "cancelled": N_("Your work permit was cancelled; an e-card can only be registered with a valid permit."),
}
_FACE_FAILED = {
    Outcome.NO_FACE: N_("No face was found in picture {step}. Keep your whole face in the frame, in good light."),
    Outcome.SEVERAL_FACES: N_("More than one face was in picture {step}. Make sure you are alone in front of the camera."),
    Outcome.NOT_FOLLOWED: N_("Picture {step} did not show the action asked for. Please follow each instruction on the screen."),
    Outcome.NOT_MATCHED: N_("The face does not match the photo on file for your work permit."),
}  # fmt: skip


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def actor_of(account: EcardAccount) -> str:
    return f"holder:{account.foreigner_id}"


def check_password(password: str) -> None:
    """SPEC E1: 8–16 characters with at least two kinds of letters, digits and symbols."""
    if not 8 <= len(password) <= 16 or character_kinds(password) < 2 or any(c.isspace() for c in password):
        raise InvalidInput(
            "The password needs 8 to 16 characters, no spaces, with at least two of: letters, digits, symbols.",
            field="password",
        )


@dataclass
class Hold:
    """A browser's new hold on an account: the cookie value (only its hash is stored) and what it opens."""

    account: EcardAccount
    token: str
    purpose: str


def _hold(session: Session, account: EcardAccount, purpose: str) -> Hold:
    token = secrets.token_urlsafe(32)
    now = clock.now()
    life = FACE_SESSION if purpose == FACE else dt.timedelta(hours=get_settings().session_hours)
    session.add(EcardSession(token_hash=_sha256(token), account_id=account.id, purpose=purpose,
                             created_at=now, expires_at=now + life))  # fmt: skip
    return Hold(account, token, purpose)


def _throttle(session: Session, keys: Sequence[str]) -> None:
    settings = get_settings()
    for key in keys:
        count, remaining = limits.peek(session, key, settings.login_window_seconds)
        limit = settings.login_max_failures * (4 if ":ip:" in key else 1)
        if count >= limit:
            raise TooManyRequests(
                "Too many failed attempts. Please try again in {minutes} minutes.",
                retry_after=remaining, minutes=max(1, -(-remaining // 60)),
            )  # fmt: skip


def _fail(session: Session, keys: Sequence[str], actor: str, action: str, subject: str) -> None:
    for key in keys:
        limits.hit(session, key, get_settings().login_window_seconds)
    audit.record(session, actor=actor, action=action, subject_type="ecard", subject_id=subject or "-")


def _account_of(session: Session, foreigner_id: int, *, for_update: bool = False) -> EcardAccount | None:
    stmt = select(EcardAccount).where(EcardAccount.foreigner_id == foreigner_id)
    return session.scalar(stmt.with_for_update() if for_update else stmt)


# --- registration (SPEC E1) ------------------------------------------------------------------------


def register(session: Session, *, name: str, permit_number: str, password: str, client_ip: str) -> Hold:
    """Check the name (exactly as in the passport, compared in Unicode's composed form as names are
    stored) and the permit (found, within its validity), set the password, and open the face step. A
    registration left at the face step can be started again: its count of failed face attempts stays,
    and every earlier browser's hold on it ends, so whoever completes the registration completes it with
    the password they set themselves."""
    permit_number = (permit_number or "").strip().upper()[:20]
    keys = (f"ecard:register:permit:{permit_number}", f"ecard:register:ip:{client_ip}")
    _throttle(session, keys)
    found = permits.find_permit(session, permit_number) if permit_number else None
    if found is None or found[1].passport_name != unicodedata.normalize("NFC", name or ""):
        _fail(session, keys, f"anonymous:{client_ip}", "ecard.register_fail", permit_number)
        raise InvalidInput(_NO_MATCH, field="name", keep_changes=True)
    permit, holder = found
    state = permits.live_status(permit, clock.today())
    if state != "valid":
        raise InvalidInput(_PERMIT_STATE.get(state, _PERMIT_STATE["cancelled"]), field="permit_number")
    check_password(password or "")
    account = _account_of(session, holder.id, for_update=True)
    now = clock.now()
    if account is not None and account.state == ACTIVE:
        raise Conflict(
            "An e-card is already registered for this permit. Please log in.", field="permit_number"
        )
    if account is None:
        try:
            with session.begin_nested():  # two first registrations at once: the second finds the first
                account = EcardAccount(foreigner_id=holder.id, password_hash="", state=PENDING, face_failures=0,
                                       created_at=now, version=0)  # fmt: skip
                session.add(account)
                session.flush()
        except IntegrityError:
            account = _account_of(session, holder.id, for_update=True)
            if account is None or account.state == ACTIVE:
                raise Conflict("An e-card is already registered for this permit. Please log in.",
                               field="permit_number") from None  # fmt: skip
    session.execute(delete(EcardSession).where(EcardSession.account_id == account.id))
    account.password_hash = hash_password(password)
    account.version += 1
    limits.reset(session, keys[0])
    audit.record(session, actor=actor_of(account), action="ecard.register", subject_type="ecard",
                 subject_id=account.id, after={"permit": permit.number, "state": account.state})  # fmt: skip
    return _hold(session, account, FACE)


# --- facial recognition (SPEC E2, E3) --------------------------------------------------------------


def face_tries_left(account: EcardAccount) -> int:
    return max(0, MAX_FACE_FAILURES - account.face_failures)


def _face_allowed(account: EcardAccount) -> None:
    if account.state != PENDING:
        raise Conflict("This e-card is already registered. Please log in.")
    if face_tries_left(account) == 0:
        raise Forbidden(
            "Facial recognition failed {count} times in a row. Please verify with your bank card instead.",
            count=MAX_FACE_FAILURES,
        )


@dataclass
class Challenge:
    token: str
    actions: list[Action]


def _locked(session: Session, account: EcardAccount) -> EcardAccount:
    """The account row, locked for the rest of the transaction: attempts sent at once are counted one
    after the other, none lost."""
    session.refresh(account, with_for_update=True)
    return account


def start_face(session: Session, *, account: EcardAccount) -> Challenge:
    """The actions of a new attempt, in a fresh random order; an earlier challenge not yet used ends."""
    _face_allowed(_locked(session, account))
    token = secrets.token_urlsafe(24)
    actions = liveness.new_actions()
    now = clock.now()
    for old in session.scalars(
        select(LivenessChallenge).where(
            LivenessChallenge.account_id == account.id, LivenessChallenge.used_at.is_(None)
        )
    ):
        old.used_at = now
    session.add(LivenessChallenge(token_hash=_sha256(token), account_id=account.id, actions=list(actions),
                                  created_at=now, expires_at=now + CHALLENGE_LIFE))  # fmt: skip
    return Challenge(token, actions)


def _pictures(frames: Sequence[bytes]) -> list[Image.Image]:
    return [
        images.open_checked(data, kinds=images.JPEG_OR_PNG, max_bytes=FRAME_MAX_BYTES,
                            max_pixels=FRAME_MAX_PIXELS, field=f"frame{i}")
        for i, data in enumerate(frames)
    ]  # fmt: skip


def verify_face(
    session: Session,
    *,
    account: EcardAccount,
    challenge: str,
    frames: Sequence[bytes],
    reader: faces.FaceReader = faces.READER,
) -> EcardAccount:
    """Judge the pictures taken for a challenge against the photo on file. A failure is counted (and
    kept, although the call fails); the sixth in a row closes the face step (SPEC E3)."""
    _face_allowed(_locked(session, account))
    row = session.scalar(
        select(LivenessChallenge)
        .where(LivenessChallenge.token_hash == _sha256(challenge or ""))
        .with_for_update()
    )
    now = clock.now()
    if row is None or row.account_id != account.id or row.used_at is not None or row.expires_at <= now:
        raise InvalidInput("This face check has expired or was already used. Please start it again.")
    actions = [Action(a) for a in row.actions]
    if len(frames) != len(actions):
        raise InvalidInput("Please take one picture for each of the {count} steps.", count=len(actions))
    pictures = _pictures(frames)
    photo = permits.holder_photo(session, account.foreigner_id)
    on_file = reader.faces(Image.open(io.BytesIO(photo))) if photo else []
    judgement = liveness.judge(on_file, [reader.faces(p) for p in pictures], actions)
    row.used_at = now
    session.add(FaceAttempt(account_id=account.id, at=now, outcome=judgement.outcome.value,
                            distance=judgement.distance))  # fmt: skip
    if judgement.outcome is Outcome.NO_PHOTO:
        account.face_failures = MAX_FACE_FAILURES
        audit.record(session, actor=actor_of(account), action="ecard.face_unavailable", subject_type="ecard",
                     subject_id=account.id)  # fmt: skip
        raise Forbidden(
            "The photo on file for your work permit cannot be used for facial recognition. "
            "Please verify with your bank card instead.",
            keep_changes=True,
        )
    if judgement.outcome is not Outcome.PASSED:
        account.face_failures += 1
        audit.record(session, actor=actor_of(account), action="ecard.face_fail", subject_type="ecard",
                     subject_id=account.id, after={"outcome": judgement.outcome.value})  # fmt: skip
        if face_tries_left(account) == 0:
            raise Forbidden(
                "Facial recognition failed {count} times in a row. Please verify with your bank card instead.",
                keep_changes=True, count=MAX_FACE_FAILURES,
            )  # fmt: skip
        # the page says how many tries are left
        raise InvalidInput(_FACE_FAILED[judgement.outcome], keep_changes=True, step=judgement.step)
    _activate(session, account, how="face")
    return account


def _activate(session: Session, account: EcardAccount, *, how: str) -> None:
    account.state = ACTIVE
    account.activated_at = clock.now()
    account.face_failures = 0
    account.version += 1
    audit.record(session, actor=actor_of(account), action="ecard.activate", subject_type="ecard",
                 subject_id=account.id, after={"state": ACTIVE, "by": how})  # fmt: skip


# --- the bank card instead (SPEC E3) ---------------------------------------------------------------


def bank_check_open(account: EcardAccount) -> bool:
    """The bank card is the way once facial recognition is closed to the registration."""
    return account.state == PENDING and face_tries_left(account) == 0


def _bank_allowed(account: EcardAccount) -> None:
    if account.state != PENDING:
        raise Conflict("This e-card is already registered. Please log in.")
    if not bank_check_open(account):
        raise Forbidden(
            "Please complete facial recognition first; the bank card is the way after it has failed."
        )


def _code_hash(account_id: int, code: str) -> str:
    key = get_settings().resolved_secret_key()
    return hmac.new(key, f"sms:{account_id}:{code}".encode(), hashlib.sha256).hexdigest()


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


def start_bank_check(
    session: Session,
    *,
    account: EcardAccount,
    name: str,
    passport_number: str,
    card_number: str,
    phone: str,
    check: banks.CardCheck = banks.CHECK,
    gateway: notify.Gateway = notify.GATEWAY,
) -> str:
    """Name, passport number, a domestic UnionPay card and the phone number the bank keeps: when the
    bank confirms all four and they are the registering person's, a code goes by text message to that
    phone. Returns the phone number, masked, for the page to say where the code went. Refused checks and
    codes sent are both counted per account, so neither the bank check nor the phone can be flooded."""
    _bank_allowed(_locked(session, account))
    keys = (f"ecard:bank:account:{account.id}",)
    _throttle(session, (*keys, f"ecard:sms:account:{account.id}"))
    card_number = bank_rules.check_unionpay_card(card_number)
    phone = bank_rules.check_mobile(phone)
    passport_number = (passport_number or "").strip().upper()
    name = unicodedata.normalize("NFC", name or "")
    holder = permits.person(session, account.foreigner_id)
    ours = name == holder.passport_name and passport_number == holder.passport_number
    if not (ours and check.four_elements(session, name=name, passport_number=passport_number,
                                         card_number=card_number, phone=phone)):  # fmt: skip
        _fail(session, keys, actor_of(account), "ecard.bank_check_fail", str(account.id))
        raise InvalidInput(
            "The bank could not confirm these details. The name, passport number, card number and phone number "
            "must be those your bank keeps for the card.", keep_changes=True,
        )  # fmt: skip
    limits.reset(session, keys[0])
    limits.hit(session, f"ecard:sms:account:{account.id}", get_settings().login_window_seconds)
    now = clock.now()
    code = f"{secrets.randbelow(10**6):06d}"
    for old in session.scalars(
        select(SmsCode).where(SmsCode.account_id == account.id, SmsCode.used_at.is_(None))
    ):
        old.used_at = now  # one code at a time: the newest
    session.add(SmsCode(account_id=account.id, phone=phone, code_hash=_code_hash(account.id, code), created_at=now,
                        expires_at=now + SMS_CODE_LIFE, attempts=0))  # fmt: skip
    minutes = int(SMS_CODE_LIFE.total_seconds() // 60)
    gateway.send(session, phone=phone, body=(
        f"【电子社保卡】验证码 {code}，{minutes}分钟内有效，请勿告诉他人。"
        f"E-card verification code: {code}. Valid for {minutes} minutes. Do not share it."
    ))  # fmt: skip
    audit.record(session, actor=actor_of(account), action="ecard.bank_check", subject_type="ecard",
                 subject_id=account.id, after={"phone": mask_phone(phone)})  # fmt: skip
    return mask_phone(phone)


def confirm_bank_code(session: Session, *, account: EcardAccount, code: str) -> EcardAccount:
    """The code from the text message completes the registration. Wrong codes are counted per account
    across codes, as well as per code."""
    _bank_allowed(_locked(session, account))
    wrong = f"ecard:smscode:account:{account.id}"
    _throttle(session, (wrong,))
    now = clock.now()
    stmt = select(SmsCode).where(SmsCode.account_id == account.id, SmsCode.used_at.is_(None))
    row = session.scalar(stmt.order_by(SmsCode.id.desc()).with_for_update())
    if row is None or row.expires_at <= now:
        raise InvalidInput("The code has expired. Please ask for a new one.", field="code")
    code = (code or "").strip()
    if not hmac.compare_digest(_code_hash(account.id, code), row.code_hash):
        limits.hit(session, wrong, get_settings().login_window_seconds)
        row.attempts += 1
        left = SMS_CODE_TRIES - row.attempts
        if left <= 0:
            row.used_at = now
            raise InvalidInput("The code was wrong too many times. Please ask for a new one.", field="code",
                               keep_changes=True)  # fmt: skip
        raise InvalidInput(
            "The code is wrong. Tries left: {left}.", field="code", keep_changes=True, left=left
        )
    row.used_at = now
    _activate(session, account, how="bank_card")
    return account


def promote(session: Session, token: str | None) -> None:
    """After the registration completes, the browser that did it is signed in; any other browser's hold
    on the registration ends."""
    if token:
        row = session.scalar(select(EcardSession).where(EcardSession.token_hash == _sha256(token)))
        if row is not None:
            session.execute(
                delete(EcardSession).where(
                    EcardSession.account_id == row.account_id, EcardSession.id != row.id
                )
            )
            row.purpose = HOLDER
            row.expires_at = clock.now() + dt.timedelta(hours=get_settings().session_hours)


# --- log-in (SPEC E5) ------------------------------------------------------------------------------


def sign_in(session: Session, *, permit_number: str, password: str, client_ip: str) -> Hold:
    """Permit number and password. A registration still at its face step opens that step again."""
    permit_number = (permit_number or "").strip().upper()[:20]
    keys = (f"ecard:login:permit:{permit_number}", f"ecard:login:ip:{client_ip}")
    _throttle(session, keys)
    found = permits.find_permit(session, permit_number) if permit_number else None
    account = _account_of(session, found[1].id) if found else None
    ok = verify_password(account.password_hash if account else dummy_hash(), password or "")
    if not ok or account is None:
        _fail(session, keys, f"anonymous:{client_ip}", "ecard.login_fail", permit_number)
        raise Unauthorized("The permit number or password is wrong.", keep_changes=True)
    limits.reset(session, keys[0])
    audit.record(
        session, actor=actor_of(account), action="ecard.login", subject_type="ecard", subject_id=account.id
    )
    return _hold(session, account, HOLDER if account.state == ACTIVE else FACE)


def account_for_token(session: Session, token: str | None, *, purpose: str = HOLDER) -> EcardAccount | None:
    if not token:
        return None
    row = session.scalar(select(EcardSession).where(EcardSession.token_hash == _sha256(token)))
    if row is None or row.expires_at <= clock.now() or row.purpose != purpose:
        return None
    return session.get(EcardAccount, row.account_id)


def purge(session: Session) -> int:
    """Delete ended e-card sessions and ended liveness challenges; returns how many sessions."""
    now = clock.now()
    session.execute(delete(LivenessChallenge).where(LivenessChallenge.expires_at <= now))
    result = session.execute(delete(EcardSession).where(EcardSession.expires_at <= now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def sign_out(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(EcardSession).where(EcardSession.token_hash == _sha256(token)))


# --- what the holder sees --------------------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    """The e-card's face: the holder and their current permit (SPEC E8's information query)."""

    holder: Foreigner
    permit: Permit | None
    status: str | None


def card(session: Session, account: EcardAccount) -> Card:
    holder = permits.person(session, account.foreigner_id)
    permit = permits.current_permit(session, holder.id)
    return Card(holder, permit, permits.live_status(permit, clock.today()) if permit else None)


@dataclass(frozen=True)
class Check:
    at: dt.datetime
    party: iam.Party
    channel: str
    verdict: str
    permit_number: str | None


def checks(session: Session, account: EcardAccount) -> list[Check]:
    """Who checked the holder's permit codes, newest first: the police verifier or partner system, when,
    how and with what verdict. The holder's own reading of their checks is itself recorded (SPEC X5)."""
    rows = credentials.checks_of_holder(session, account.foreigner_id)
    who = iam.parties(session, sorted({r.actor for r in rows}))
    numbers = permits.numbers_of(session, [r.permit_id for r in rows if r.permit_id is not None])
    audit.record(session, actor=actor_of(account), action="ecard.checks_read", subject_type="foreigner",
                 subject_id=account.foreigner_id)  # fmt: skip
    return [Check(r.at, who[r.actor], r.channel, r.verdict, numbers.get(r.permit_id or 0)) for r in rows]


def face_attempts(session: Session, account: EcardAccount) -> list[FaceAttempt]:
    stmt = select(FaceAttempt).where(FaceAttempt.account_id == account.id).order_by(FaceAttempt.id)
    return list(session.scalars(stmt))
