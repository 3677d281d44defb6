from django.apps import AppConfig


class DownloaderConfig(AppConfig):
    name = "downloader"
    verbose_name = "Image downloader"
