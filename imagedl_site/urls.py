from django.contrib import admin
from django.urls import include, path

from jobs.ops.views import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("jobs.api.urls")),
    path("metrics", metrics, name="metrics"),
    path("", include("jobs.web.urls")),
]
