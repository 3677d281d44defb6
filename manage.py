#!/usr/bin/env python
"""Django's command-line utility for imagedl."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagedl_site.settings")
    if sys.argv[1:2] == ["qcluster"]:
        # The worker's processes count into files: the folder is set before Django (and
        # with it prometheus_client) is imported, and before django-q2 forks.
        from imagedl_site.prometheus_dir import multiproc_dir_prepare

        multiproc_dir_prepare("worker")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
