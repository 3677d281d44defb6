"""Operators' changes, written to Django's admin log (its "History" pages)."""

from __future__ import annotations

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.http import HttpRequest

from jobs.models import Job, Series


def log_change(request: HttpRequest, record: Job | Series, message: str) -> None:
    """An operator's change to a job or a series, in Django's admin log."""
    model = type(record)
    LogEntry.objects.create(
        user_id=request.user.pk,
        content_type_id=ContentType.objects.get_for_model(model, for_concrete_model=False).pk,
        object_id=str(record.id),
        object_repr=f"{model.__name__} {record.id}"[:200],
        action_flag=CHANGE,
        change_message=message,
    )
