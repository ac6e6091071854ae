"""Every (state, event) pair of the transition tables (SPEC W1, W4)."""

from __future__ import annotations

import itertools

import pytest

from workcard.errors import IllegalTransition
from workcard.permits.states import (
    APPLICATION_TRANSITIONS,
    PERMIT_TRANSITIONS,
    ApplicationEvent,
    ApplicationState,
    PermitEvent,
    PermitState,
    next_application_state,
    next_permit_state,
)

EXPECTED_PERMIT = {
    (PermitState.VALID, PermitEvent.RENEW): PermitState.VALID,
    (PermitState.VALID, PermitEvent.MODIFY): PermitState.VALID,
    (PermitState.VALID, PermitEvent.EXPIRE): PermitState.EXPIRED,
    (PermitState.VALID, PermitEvent.CANCEL): PermitState.CANCELLED,
}
EXPECTED_APPLICATION = {
    (ApplicationState.DRAFT, ApplicationEvent.EDIT): ApplicationState.DRAFT,
    (ApplicationState.DRAFT, ApplicationEvent.SUBMIT): ApplicationState.SUBMITTED,
    (ApplicationState.DRAFT, ApplicationEvent.WITHDRAW): ApplicationState.WITHDRAWN,
    (ApplicationState.SUBMITTED, ApplicationEvent.APPROVE): ApplicationState.APPROVED,
    (ApplicationState.SUBMITTED, ApplicationEvent.REJECT): ApplicationState.REJECTED,
    (ApplicationState.SUBMITTED, ApplicationEvent.WITHDRAW): ApplicationState.WITHDRAWN,
}


@pytest.mark.parametrize(("state", "event"), list(itertools.product(PermitState, PermitEvent)))
def test_permit_transition(state, event):  # SPEC W4
    expected = EXPECTED_PERMIT.get((state, event))
    if expected is None:
        with pytest.raises(IllegalTransition) as info:
            next_permit_state(state, event)
        assert info.value.status == 409
    else:
        assert next_permit_state(state, event) is expected


@pytest.mark.parametrize(("state", "event"), list(itertools.product(ApplicationState, ApplicationEvent)))
def test_application_transition(state, event):  # SPEC W1
    expected = EXPECTED_APPLICATION.get((state, event))
    if expected is None:
        with pytest.raises(IllegalTransition):
            next_application_state(state, event)
    else:
        assert next_application_state(state, event) is expected


def test_tables_are_what_the_tests_expect():
    assert PERMIT_TRANSITIONS == EXPECTED_PERMIT
    assert APPLICATION_TRANSITIONS == EXPECTED_APPLICATION
