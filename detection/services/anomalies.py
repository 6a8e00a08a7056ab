"""What operators do with anomalies: acknowledge them, then resolve them or mark an external cause.

Lifecycle: open → acknowledged → resolved | external_cause; open may go straight to resolved or external_cause.
A resolved or external-cause anomaly is final. The detector never changes the status, only the alarm's extent
(`ended_at`, `closed_at`, peak), so operators' decisions and the detector's updates never overwrite each other.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from rest_framework import status

from accounts.models import User
from common.exceptions import ApplicationError
from detection.models import Anomaly

State = Anomaly.State
FINAL = (State.RESOLVED, State.EXTERNAL_CAUSE)


def _locked(anomaly: Anomaly) -> Anomaly:
    return Anomaly.objects.select_for_update().get(pk=anomaly.pk)


def _refuse(anomaly: Anomaly, action: str) -> ApplicationError:
    return ApplicationError(
        f"Anomaly {anomaly.pk} is {anomaly.get_status_display().lower()}: it cannot be {action}.",
        code="invalid_transition",
        status_code=status.HTTP_409_CONFLICT,
    )


@transaction.atomic
def anomaly_acknowledge(*, anomaly: Anomaly, user: User, note: str = "") -> Anomaly:
    """An operator has seen an open anomaly. Acknowledging one already acknowledged is refused (409)."""
    anomaly = _locked(anomaly)
    if anomaly.status != State.OPEN:
        raise _refuse(anomaly, "acknowledged")
    anomaly.status = State.ACKNOWLEDGED
    anomaly.acknowledged_by, anomaly.acknowledged_at = user, timezone.now()
    if note:
        anomaly.note = note
    anomaly.save(update_fields=["status", "acknowledged_by", "acknowledged_at", "note"])
    return anomaly


@transaction.atomic
def anomaly_resolve(*, anomaly: Anomaly, user: User, cause: str = State.RESOLVED, note: str = "") -> Anomaly:
    """Close an open or acknowledged anomaly as `resolved` or `external_cause` (final; again is refused, 409)."""
    if cause not in FINAL:
        raise ApplicationError(
            "cause must be 'resolved' or 'external_cause'.", fields={"cause": [f"{cause!r} is not a final state."]}
        )
    anomaly = _locked(anomaly)
    if anomaly.status in FINAL:
        raise _refuse(anomaly, "resolved")
    anomaly.status = cause
    anomaly.resolved_by, anomaly.resolved_at = user, timezone.now()
    if note:
        anomaly.note = note
    anomaly.save(update_fields=["status", "resolved_by", "resolved_at", "note"])
    return anomaly
