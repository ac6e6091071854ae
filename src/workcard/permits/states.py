"""Application and permit states as pure transition tables (SPEC W1, W4). No framework, no DB."""

from __future__ import annotations

from enum import StrEnum

from workcard.errors import IllegalTransition


class ApplicationKind(StrEnum):
    NEW = "new"
    RENEWAL = "renewal"
    MODIFICATION = "modification"
    CANCELLATION = "cancellation"


class ApplicationState(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class ApplicationEvent(StrEnum):
    EDIT = "edit"
    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    WITHDRAW = "withdraw"


class PermitState(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class PermitEvent(StrEnum):
    RENEW = "renew"
    MODIFY = "modify"
    EXPIRE = "expire"
    CANCEL = "cancel"


class Category(StrEnum):
    A = "A"
    B = "B"
    C = "C"


APPLICATION_TRANSITIONS: dict[tuple[ApplicationState, ApplicationEvent], ApplicationState] = {
    (ApplicationState.DRAFT, ApplicationEvent.EDIT): ApplicationState.DRAFT,
    (ApplicationState.DRAFT, ApplicationEvent.SUBMIT): ApplicationState.SUBMITTED,
    (ApplicationState.DRAFT, ApplicationEvent.WITHDRAW): ApplicationState.WITHDRAWN,
    (ApplicationState.SUBMITTED, ApplicationEvent.APPROVE): ApplicationState.APPROVED,
    (ApplicationState.SUBMITTED, ApplicationEvent.REJECT): ApplicationState.REJECTED,
    (ApplicationState.SUBMITTED, ApplicationEvent.WITHDRAW): ApplicationState.WITHDRAWN,
}

# A renewal or modification keeps the permit valid (with new data); only a valid permit can change.
PERMIT_TRANSITIONS: dict[tuple[PermitState, PermitEvent], PermitState] = {
    (PermitState.VALID, PermitEvent.RENEW): PermitState.VALID,
    (PermitState.VALID, PermitEvent.MODIFY): PermitState.VALID,
    (PermitState.VALID, PermitEvent.EXPIRE): PermitState.EXPIRED,
    (PermitState.VALID, PermitEvent.CANCEL): PermitState.CANCELLED,
}


def next_application_state(current: ApplicationState, event: ApplicationEvent) -> ApplicationState:
    try:
        return APPLICATION_TRANSITIONS[(current, event)]
    except KeyError:
        raise IllegalTransition(current, event) from None


def next_permit_state(current: PermitState, event: PermitEvent) -> PermitState:
    try:
        return PERMIT_TRANSITIONS[(current, event)]
    except KeyError:
        raise IllegalTransition(current, event) from None
