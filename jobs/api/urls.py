from django.urls import include, path

from jobs.api import keys
from jobs.api.v1 import api

key_patterns = (
    [
        path("", keys.keys_request, name="request"),
        path("<str:token>/", keys.keys_reveal, name="reveal"),
    ],
    "api_keys",
)

urlpatterns = [
    path("v1/", api.urls),
    path("keys/", include(key_patterns)),
]
