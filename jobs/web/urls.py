from django.urls import path

from jobs.web import series_views, views

app_name = "jobs"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("jobs/<str:token>/submitted", views.submitted, name="submitted"),
    path("jobs/<str:token>/", views.status, name="status"),
    path("jobs/<str:token>/status.json", views.status_json, name="status_json"),
    path("jobs/<str:token>/cancel", views.cancel, name="cancel"),
    path("jobs/<str:token>/download", views.download, name="download"),
    path("jobs/<str:token>/thumb/<int:number>.jpg", views.thumbnail, name="thumbnail"),
    path("jobs/<str:token>/image/<int:number>", views.image, name="image"),
    path("jobs/<str:token>/resubmit", views.resubmit, name="resubmit"),
    path("unsubscribe/<str:token>", views.unsubscribe, name="unsubscribe"),
    path("series/<str:token>/", series_views.series_status, name="series"),
    path("series/<str:token>/stop", series_views.series_stop, name="series_stop"),
    path("series/confirm/<str:token>/", series_views.series_confirm, name="series_confirm"),
]
