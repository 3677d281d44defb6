"""The JSON API (``/api/v1/``, django-ninja) and the page that hands out API keys.

Beside ``web`` and ``admin`` in the layers: it calls the same verbs (``jobs.core``,
``jobs.series``) and validates a new job with the web form (``jobs.web.forms``, the one
import it makes of a sibling, allowed by name in the import-linter contract).
"""
