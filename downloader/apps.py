from django.apps import AppConfig


class DownloaderConfig(AppConfig):
    name = "downloader"
    verbose_name = "Image downloader"

    def ready(self) -> None:
        from downloader.config import decoding_configure

        # Process-wide decode limits, before any download thread exists.
        decoding_configure()
