"""WSGI entry point (gunicorn imagedl_site.wsgi)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagedl_site.settings")
application = get_wsgi_application()


def _freeze_startup_objects() -> None:
    """Load the URL map, views and templates now, then move everything loaded so far
    out of the garbage collector's sight: full collections otherwise walk every module
    object of Django on each pass, which showed up as 100+ ms stalls in the slowest
    requests."""
    from django.template.loader import get_template
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (imports every view module)
    for name in ("jobs/home.html", "jobs/status.html", "jobs/submitted.html", "404.html"):
        get_template(name)
    gc.collect()
    gc.freeze()


_freeze_startup_objects()
