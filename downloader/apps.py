from django.apps import AppConfig


class DownloaderConfig(AppConfig):
    name = "downloader"
    verbose_name = "Image downloader"

    def ready(self) -> None:
        from django.conf import settings

        from downloader.sandbox import browser_user_configure

        browser_user_configure(settings.IMAGEDL_BROWSER_USER)
