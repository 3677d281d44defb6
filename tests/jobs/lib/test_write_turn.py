"""SQLite writers take turns: a second thread, or another process holding the turn,
waits until the writer before it is done, then goes at once."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from django.db import connection

from jobs.lib.write_turn import database_write_turn
from tests.waiting import holds_for, wait_for

pytestmark = pytest.mark.django_db(databases=["default"])


def turn_taker(entered: threading.Event, leave: threading.Event) -> threading.Thread:
    def take() -> None:
        with database_write_turn():
            entered.set()
            leave.wait(30)

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    return thread


def test_a_second_thread_waits_for_the_first_writer_and_then_goes():
    first_in, first_out = threading.Event(), threading.Event()
    second_in, second_out = threading.Event(), threading.Event()
    first = turn_taker(first_in, first_out)
    assert first_in.wait(10)
    second = turn_taker(second_in, second_out)
    assert holds_for(lambda: not second_in.is_set(), 1.0)
    first_out.set()
    assert wait_for(second_in.is_set, 10, interval=0.05)
    second_out.set()
    first.join(10)
    second.join(10)


def test_a_writer_waits_while_another_process_holds_the_turn():
    lock_path = f"{connection.settings_dict['NAME']}.writelock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys\n"
            f"fd = os.open({lock_path!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        entered, leave = threading.Event(), threading.Event()
        writer = turn_taker(entered, leave)
        assert holds_for(lambda: not entered.is_set(), 1.0)
        holder.stdin.close()  # the other process is done
        assert wait_for(entered.is_set, 10, interval=0.05)
        leave.set()
        writer.join(10)
    finally:
        holder.kill()
        holder.wait(10)
