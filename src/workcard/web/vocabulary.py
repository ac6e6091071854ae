"""Words shown from data (states, verdicts, roles) rather than written in a template: listed here so
that message extraction finds them. ``N_`` marks a string without translating it."""


def N_(message: str) -> str:
    return message


STATE_WORDS = [
    N_("valid"), N_("expired"), N_("cancelled"), N_("not_yet_valid"), N_("not_found"),
    N_("draft"), N_("submitted"), N_("approved"), N_("rejected"), N_("withdrawn"),
    N_("edit"), N_("submit"), N_("approve"), N_("reject"), N_("withdraw"),
    N_("renew"), N_("modify"), N_("expire"), N_("cancel"),
]  # fmt: skip
LABEL_WORDS = [
    N_("Category"), N_("Position"), N_("Work location"), N_("Valid from"), N_("Valid until"), N_("Reason"),
    N_("Employer name"), N_("City"), N_("Address"), N_("Reason for rejection"), N_("New permit"),
    N_("Renewal"), N_("Modification"), N_("Cancellation"), N_("Administrator"), N_("Permit officer"),
    N_("Employer staff"), N_("Police verifier"), N_("Verify work permits"),
    N_("Bad request"), N_("Not signed in"), N_("Not allowed"), N_("Not found"), N_("Method not allowed"),
    N_("Permit issued"), N_("Paper permit imported"), N_("Permit renewed"), N_("Permit modified"),
    N_("Permit cancelled"), N_("Permit expired"), N_("Notification letter issued"),
    N_("Conflict"), N_("Too large"), N_("Invalid input"), N_("Too many requests"), N_("Server error"), N_("Error"),
    N_("Service unavailable"), N_("Credentials required"),
    N_("Unsupported media type"),
]  # fmt: skip
# What a page says once after an action led to it (``forms.redirect(url, notice=KEY)``), by key.
NOTICES = {
    "permit_renewed": N_("The permit was renewed; a new version of the notification letter was issued."),
    "permit_modified": N_("The permit was modified; a new version of the notification letter was issued."),
    "permit_cancelled": N_("The permit was cancelled. Verifiers see it as cancelled from now on."),
    "ecard_registered": N_("Your e-card is registered. You are logged in."),
}
