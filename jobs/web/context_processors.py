from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict:
    return {"retention_minutes": settings.IMAGEDL_RETENTION_MINUTES}
