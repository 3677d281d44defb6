"""How many machines of each role a day's jobs need, from what bench_scale measured.

Reads the figures bench_scale wrote (var/bench-scale-results.json): CPU-seconds per job
by kind of process, Cassandra requests per job run and per submission, mails per job,
the web's CPU per submission and per status read. First it predicts this machine's own
bench_scale results from other phases of the same run:

  default  the jobs submitted at once, from the jobs run one after another and the
           stack left idle: the cores give the idle stack its share and each job its own
           CPU; each django-q2 task process is held for a run's own time;
  cluster  two workers, from one worker's CPU per job and jobs per minute.

Only when every prediction is within 25% of what was measured does it go on to the
machines needed for 10,000 and 1,000,000 jobs a day of --images images, under the
assumptions printed with them (docs/capacity.md explains each).

    .venv/bin/python -m bench.capacity [--results var/bench-scale-results.json] [--images 100]
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMITATIONS = "bench (image hosts, imitation, mail)"
ROLES = {  # role -> the kinds of process (bench.cpu_profile) it runs
    "worker (Chromium + django-q2)": ("chromium", "worker", "other"),
    "Cassandra": ("cassandra",),
    "PostgreSQL": ("postgres",),
    "Redis": ("redis",),
    "S3 (s3proxy here)": ("s3proxy",),
}
MINIMUM_MACHINES = {"worker (Chromium + django-q2)": 2, "Cassandra": 3, "web": 2}  # RF 3; one may fail
TOLERANCE = 0.25
PREVIEWS_KEPT = 24  # jobs.core.services.PREVIEWS_KEPT (bench reads no Django settings)


@dataclass(frozen=True)
class Assumptions:
    images: int  # per job
    peak: float  # the busiest hour's rate over the day's mean
    busy: float  # the share of a machine's cores planned to be used at the peak
    cores: int  # per machine
    watched: float  # share of a job's run time someone keeps its status page open
    poll_seconds: float = 1.5  # the status page's polling interval


def cpu_per_job(row: dict, kinds: tuple[str, ...] | None = None) -> float:
    """CPU-seconds per job of ``kinds`` (every kind but the imitations when None)."""
    per_kind = row["cpu"]["per_kind"]
    chosen = kinds if kinds is not None else [k for k in per_kind if k != IMITATIONS]
    return sum(per_kind.get(k, 0.0) for k in chosen) / row["jobs"]


def machine_cpu_per_job(row: dict) -> float:
    """Everything the bench machine ran per job, the imitations included: what
    competes for its cores."""
    return sum(row["cpu"]["per_kind"].values()) / row["jobs"]


def predict(calibration: dict, cores: int, parallel: int, what: str) -> tuple[float, str]:
    """Jobs per minute with ``parallel`` times the calibration phase's runners (task
    processes or workers) and jobs always waiting, on the same ``cores``: at most the
    cores' seconds over the CPU per job, at most ``parallel`` times its rate."""
    cpu_bound = cores * 60 / machine_cpu_per_job(calibration)
    runners_bound = parallel * calibration["jobs_per_minute"]
    return min(
        cpu_bound, runners_bound
    ), f"cores allow {cpu_bound:.1f}, {parallel} {what} {runners_bound:.1f}"


def predict_from_alone(alone: dict, idle: dict, cores: int, q_workers: int) -> tuple[float, str]:
    """Jobs per minute with jobs always waiting, from jobs run one at a time and the
    stack left idle: a task process is held for a run's own time (not the queue's or
    the mail's waits), and the cores give what the idle stack leaves them to each job's
    own CPU (its CPU alone less the idle cost of the time it took)."""
    idle_rate = sum(idle["cpu"]["per_kind"].values()) / idle["seconds"]  # CPU-s per second
    wall = 60 / alone["jobs_per_minute"]  # seconds per job, one after another
    own_cpu = machine_cpu_per_job(alone) - idle_rate * wall
    cpu_bound = (cores - idle_rate) * 60 / own_cpu
    runners_bound = q_workers * 60 / alone["run_seconds"]
    why = f"cores allow {cpu_bound:.1f} ({own_cpu:.2f} CPU-s a job, idle {idle_rate:.2f} cores), "
    return min(cpu_bound, runners_bound), why + f"{q_workers} task processes {runners_bound:.1f}"


def predictions(results: dict) -> list[tuple[str, float, float, str]]:
    """(what, predicted, measured, why) for each phase the results allow."""
    cores, stacks, found = results["cores"], results["stacks"], []
    if "default" in stacks:
        alone, at_once = stacks["default"]["jobs"]
        predicted, why = predict_from_alone(
            alone, stacks["default"]["idle"], cores, stacks["default"]["q_workers"]
        )
        found.append(
            (f"default stack, {at_once['jobs']} jobs at once", predicted, at_once["jobs_per_minute"], why)
        )
    if "cluster" in stacks:
        one, two = stacks["cluster"]["jobs"]
        predicted, why = predict(one, cores, stacks["cluster"]["workers"], "workers")
        found.append(("cluster, two workers", predicted, two["jobs_per_minute"], why))
    return found


def role_costs(results: dict, assume: Assumptions) -> dict[str, float]:
    """CPU-seconds per job of ``assume.images`` images, by role: the cluster's figures
    (Cassandra RF 3, PostgreSQL, Redis, S3) where measured, else the default stack's;
    costs scale with the images of a job (the fixed part of a job is counted as if it
    grew with it too, which overstates large jobs)."""
    stacks = results["stacks"]
    source = stacks.get("cluster") or stacks["default"]
    row = source["jobs"][-1]
    scale = assume.images / row["images"]
    measured = {role: cpu_per_job(row, kinds) * scale for role, kinds in ROLES.items()}
    costs = {role: seconds for role, seconds in measured.items() if seconds > 0}  # roles the stack ran
    if "cluster" not in stacks:
        costs["Cassandra"] *= 3  # one replica measured; a cluster writes three
    web = source["web"]
    per_submission = web["cpu_phase"]["per_kind"].get("web", 0.0) / web["submissions"]
    per_read = web["status_cpu"]["per_kind"].get("web", 0.0) / web["status_reads"]
    run_seconds = 60 / stacks.get("default", source)["jobs"][0]["jobs_per_minute"] * scale
    polls = assume.watched * run_seconds / assume.poll_seconds
    costs["web"] = per_submission + polls * per_read
    return costs


def machines(costs: dict[str, float], jobs_per_day: int, assume: Assumptions) -> dict[str, tuple[float, int]]:
    """Cores busy at the peak and machines, by role."""
    peak_rate = jobs_per_day / 86_400 * assume.peak
    needed = {}
    for role, seconds in costs.items():
        cores = peak_rate * seconds / assume.busy
        count = max(math.ceil(cores / assume.cores), MINIMUM_MACHINES.get(role, 1))
        needed[role] = (cores, count)
    return needed


def volumes(results: dict, jobs_per_day: int, assume: Assumptions) -> list[str]:
    stacks = results["stacks"]
    row = (stacks.get("cluster") or stacks["default"])["jobs"][-1]
    scale = assume.images / row["images"]
    requests = sum(row["per_job"].values()) * scale + sum(row["per_submission"].values())
    lwt = row["per_job"].get("lwt", 0.0) * scale + row["per_submission"].get("lwt", 0.0)
    per_day = jobs_per_day / 86_400
    writes = min(assume.images, PREVIEWS_KEPT) + 1
    return [
        f"Cassandra requests {requests:.0f} per job ({lwt:.0f} lightweight transactions): "
        f"{requests * per_day:.0f}/s on average, {requests * per_day * assume.peak:.0f}/s at the peak",
        f"mails {row['mails_per_job']:.1f} per job: {row['mails_per_job'] * jobs_per_day:,.0f} a day",
        f"S3 writes {writes} per job (previews of the first {PREVIEWS_KEPT} images, the archive): "
        f"{writes * jobs_per_day:,.0f} a day",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "var" / "bench-scale-results.json")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--peak", type=float, default=3.0)
    parser.add_argument("--busy", type=float, default=0.6)
    parser.add_argument("--machine-cores", type=int, default=8)
    parser.add_argument("--watched", type=float, default=0.5)
    args = parser.parse_args()
    results = json.loads(args.results.read_text())
    assume = Assumptions(args.images, args.peak, args.busy, args.machine_cores, args.watched)

    print(
        f"this machine ({results['cores']} cores), predicted from other phases of the same bench_scale run:"
    )
    worst = 0.0
    for what, predicted, measured, why in predictions(results):
        error = predicted / measured - 1
        worst = max(worst, abs(error))
        print(f"  {what}: predicted {predicted:.2f} jobs/min ({why}), measured {measured:.2f}: {error:+.0%}")
    if worst > TOLERANCE:
        raise SystemExit(
            f"the model misses this machine by {worst:.0%} (more than {TOLERANCE:.0%}): no larger claim"
        )

    costs = role_costs(results, assume)
    print(
        f"\njobs of {assume.images} images; the busiest hour {assume.peak:g}x the day's mean; machines of "
        f"{assume.cores} cores planned {assume.busy:.0%} busy at the peak; status pages open "
        f"{assume.watched:.0%} of a run, polled every {assume.poll_seconds:g} s"
    )
    days = (10_000, 1_000_000)
    print(f"  {'role':<31} {'CPU s/job':>9}" + "".join(f" {f'{d:,}/day: cores, machines':>30}" for d in days))
    plans = [machines(costs, d, assume) for d in days]
    for role, seconds in costs.items():
        cells = "".join(f" {plan[role][0]:>22.1f} {plan[role][1]:>7}" for plan in plans)
        print(f"  {role:<31} {seconds:>9.2f}{cells}")
    for jobs_per_day in days:
        print(f"  at {jobs_per_day:,} jobs a day: " + "; ".join(volumes(results, jobs_per_day, assume)))


if __name__ == "__main__":
    main()
