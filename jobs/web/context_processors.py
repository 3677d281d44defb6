from django.conf import settings
from django.http import HttpRequest

from jobs.lib.formatting import duration_words


def site(request: HttpRequest) -> dict:
    minutes = settings.IMAGEDL_RETENTION_MINUTES
    return {"retention_minutes": minutes, "retention_words": duration_words(minutes)}
