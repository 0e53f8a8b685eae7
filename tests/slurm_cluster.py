"""Bring up (and tear down) a throw-away one-node SLURM cluster on localhost.

Pure stdlib; meant for pytest::

    from slurm_cluster import slurm_cluster, slurm_unavailable_reason, jobs_seen

    reason = slurm_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with slurm_cluster(tmp_path) as cluster:
        subprocess.run([...snakemake..., "--executor", "slurm"],
                       env=cluster.env, check=True)
        assert jobs_seen(cluster)

Design:
  * slurm.conf is written to ``<workdir>/slurm/`` and selected through the
    ``SLURM_CONF`` environment variable (``cluster.env``), so /etc/slurm is
    never read or modified.  The daemons get ``-f <conf>`` explicitly.
    ``cluster.env`` also puts ``<workdir>/slurm/bin`` first on PATH: shims for
    srun/sbatch/squeue/... that re-export SLURM_CONF, because the slurm-jobstep
    plugin strips all SLURM_* variables before its nested ``srun`` in the job.
  * Ports are picked free at start-up, so a system SLURM (or a second test
    run) on the default 6817/6818 does not clash.
  * No slurmdbd: accounting is off (``sacct`` does not work), so callers must
    run the executor plugin with ``--slurm-status-command squeue`` and
    ``--slurm-init-seconds-before-status-checks`` <= MIN_JOB_AGE / 3.
    Completed jobs are recorded by ``jobcomp/filetxt`` (``cluster.jobcomp_log``)
    and the controller log (``cluster.ctld_log``); ``jobs_seen`` reads them.
  * The daemons (and munged, only if it was not already running) are started
    in the foreground (``-D``) as direct children, so we know their pids; on
    exit exactly those pids get SIGTERM, then SIGKILL after a grace period.
    Nothing else is ever signalled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Iterator

# Seconds a finished job stays visible to squeue.  The slurm executor plugin
# only uses squeue for status checks when MinJobAge >= 3 x
# --slurm-init-seconds-before-status-checks; otherwise it silently falls back
# to sacct, which does not work without slurmdbd.
MIN_JOB_AGE = 300
PARTITION = "debug"
CLUSTER_NAME = "rsaflowtest"

_REQUIRED_BINARIES = (
    "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol",
    "scancel", "srun", "munged", "munge",
)
MUNGE_KEY = pathlib.Path("/etc/munge/munge.key")
MUNGE_SOCKET_DIR = pathlib.Path("/run/munge")


def slurm_unavailable_reason() -> str | None:
    """None if a local SLURM cluster can be started here, else why not."""
    if not hasattr(os, "geteuid") or not pathlib.Path("/proc").is_dir():
        return "local SLURM test cluster needs Linux"
    if os.environ.get("RSAFLOW_SKIP_SLURM"):
        return "RSAFLOW_SKIP_SLURM is set"
    if os.geteuid() != 0:
        return "local SLURM test cluster needs root (slurmd, munged)"
    missing = [b for b in _REQUIRED_BINARIES if shutil.which(b) is None]
    if missing:
        return ("SLURM/munge binaries missing: " + ", ".join(missing)
                + " (run .ci/install_slurm.sh)")
    if not MUNGE_KEY.exists():
        return f"{MUNGE_KEY} missing (run .ci/install_slurm.sh)"
    return None


@dataclasses.dataclass
class SlurmCluster:
    state_dir: pathlib.Path      # slurm.conf + logs (kept after exit)
    conf: pathlib.Path
    env: dict                    # pass to subprocesses (SLURM_CONF etc.)
    ctld_log: pathlib.Path
    slurmd_log: pathlib.Path
    jobcomp_log: pathlib.Path
    partition: str
    node: str
    min_job_age: int = MIN_JOB_AGE
    pids: dict = dataclasses.field(default_factory=dict)  # name -> pid we started


# --------------------------------------------------------------------------
# helpers

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: pathlib.Path, n: int = 30) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as e:
        return f"<{path}: {e}>"
    return "\n".join(lines[-n:])


def _node_hardware(node: str) -> dict:
    """Parse ``slurmd -C``: CPUs/Sockets/Cores/Threads and RealMemory (MB)."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True,
                         timeout=30).stdout
    first = out.splitlines()[0] if out.strip() else ""
    hw = dict(kv.split("=", 1) for kv in first.split() if "=" in kv)
    cpus = int(hw.get("CPUs", os.cpu_count() or 1))
    mem = int(hw.get("RealMemory", 1024))
    spec = {"CPUs": cpus}
    for key in ("Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore"):
        if key in hw:
            spec[key] = hw[key]
    # Headroom: a node reporting less memory than configured gets drained.
    spec["RealMemory"] = max(256, int(mem * 0.9) - 256)
    return spec


def _munge_works() -> bool:
    try:
        enc = subprocess.run(["munge", "-n"], capture_output=True, timeout=10)
        if enc.returncode != 0:
            return False
        dec = subprocess.run(["unmunge"], input=enc.stdout,
                             capture_output=True, timeout=10)
        return dec.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _write_conf(state: pathlib.Path, spool: pathlib.Path, node: str,
                fake_gpu: bool = False, node_memory_mb: int | None = None
                ) -> dict:
    hw = _node_hardware(node)
    overrides = ""
    if node_memory_mb:
        # Pretend the node has this much memory (slurmd reports the
        # configured values instead of the real ones; nothing enforces
        # memory with task/none), so production-sized --mem requests fit.
        hw["RealMemory"] = int(node_memory_mb)
        overrides = "SlurmdParameters=config_overrides\n"
    ctld_port, slurmd_port = _free_port(), _free_port()
    while slurmd_port == ctld_port:
        slurmd_port = _free_port()
    def_mem = max(100, min(1024, hw["RealMemory"] // hw["CPUs"]))
    node_spec = " ".join(f"{k}={v}" for k, v in hw.items())
    gres_lines = ""
    if fake_gpu:
        # One fake GPU backed by /dev/null (slurmd drops file-less GPUs):
        # lets `sbatch --gpus=1` be scheduled, so the GPU resource mapping
        # can be tested without a GPU.  Jobs get CUDA_VISIBLE_DEVICES=0.
        node_spec += " Gres=gpu:1"
        gres_lines = "GresTypes=gpu\n"
        (state / "gres.conf").write_text(
            f"NodeName={node} Name=gpu File=/dev/null Count=1\n")
    paths = {
        "conf": state / "slurm.conf",
        "ctld_log": state / "slurmctld.log",
        "slurmd_log": state / "slurmd.log",
        "jobcomp_log": state / "jobcomp.log",
    }
    conf = f"""\
# generated by tests/slurm_cluster.py -- throw-away one-node test cluster
ClusterName={CLUSTER_NAME}
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={spool}/ctld
SlurmdSpoolDir={spool}/d
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={paths['ctld_log']}
SlurmdLogFile={paths['slurmd_log']}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={paths['jobcomp_log']}
SchedulerType=sched/backfill
SchedulerParameters=sched_min_interval=200000
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU={def_mem}
MinJobAge={MIN_JOB_AGE}
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
{overrides}{gres_lines}NodeName={node} NodeHostname={node} NodeAddr=127.0.0.1 {node_spec} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""
    paths["conf"].write_text(conf)
    return paths


_CLIENTS = ("srun", "sbatch", "salloc", "squeue", "sinfo", "scontrol",
            "scancel", "sacct", "sstat")


def _write_client_shims(state: pathlib.Path, conf: pathlib.Path) -> pathlib.Path:
    bindir = state / "bin"
    bindir.mkdir(exist_ok=True)
    for name in _CLIENTS:
        real = shutil.which(name)
        if real is None:
            continue
        shim = bindir / name
        shim.write_text(f'#!/bin/sh\nSLURM_CONF="{conf}"; export SLURM_CONF\n'
                        f'exec "{real}" "$@"\n')
        shim.chmod(0o755)
    return bindir


def _ensure_munge_dirs() -> None:
    import grp
    import pwd
    MUNGE_SOCKET_DIR.mkdir(parents=True, exist_ok=True)
    try:
        uid = pwd.getpwnam("munge").pw_uid
        gid = grp.getgrnam("munge").gr_gid
    except KeyError:
        return
    for d in (MUNGE_SOCKET_DIR, pathlib.Path("/var/lib/munge"),
              pathlib.Path("/var/log/munge")):
        d.mkdir(parents=True, exist_ok=True)
        os.chown(d, uid, gid)
    MUNGE_SOCKET_DIR.chmod(0o755)


def _stop(procs: list[tuple[str, subprocess.Popen]], grace: float = 5.0) -> None:
    """SIGTERM then SIGKILL exactly the given children (reverse start order)."""
    for _name, p in reversed(procs):
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for _name, p in reversed(procs):
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            p.wait(timeout=10)


def _node_state(env: dict) -> str:
    r = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=env,
                       capture_output=True, text=True, timeout=15)
    return r.stdout.strip() if r.returncode == 0 else f"<sinfo rc={r.returncode}>"


# --------------------------------------------------------------------------

@contextlib.contextmanager
def slurm_cluster(workdir: pathlib.Path, start_timeout: float = 60.0,
                  fake_gpu: bool = False, node_memory_mb: int | None = None
                  ) -> Iterator[SlurmCluster]:
    """Start munged (if needed), slurmctld and slurmd; yield a SlurmCluster.

    Config and logs live in ``<workdir>/slurm`` (kept for debugging); spool
    directories live in a short temp dir (socket path length) removed on exit.
    ``fake_gpu=True`` declares one fake 'gpu' GRES (File=/dev/null) so jobs
    requesting ``--gpus=1`` can be scheduled; ``node_memory_mb`` makes the
    node claim that much memory (for production-sized ``mem_mb`` requests).
    """
    reason = slurm_unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    workdir = pathlib.Path(workdir).resolve()
    state = workdir / "slurm"
    state.mkdir(parents=True, exist_ok=True)
    spool = pathlib.Path(tempfile.mkdtemp(prefix="rsaflow-slurm-"))
    (spool / "ctld").mkdir()
    (spool / "d").mkdir()
    node = socket.gethostname().split(".")[0]
    paths = _write_conf(state, spool, node, fake_gpu, node_memory_mb)

    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["SLURM_CONF"] = str(paths["conf"])
    # snakemake-executor-plugin-slurm-jobstep strips every SLURM_* variable
    # (SLURM_CONF included) before its nested `srun` inside the job, which
    # then finds no config.  Shims first on PATH re-export SLURM_CONF.
    shim_dir = _write_client_shims(state, paths["conf"])
    env["PATH"] = f"{shim_dir}{os.pathsep}{env.get('PATH', os.defpath)}"
    cluster = SlurmCluster(state_dir=state, conf=paths["conf"], env=env,
                           ctld_log=paths["ctld_log"],
                           slurmd_log=paths["slurmd_log"],
                           jobcomp_log=paths["jobcomp_log"],
                           partition=PARTITION, node=node)

    procs: list[tuple[str, subprocess.Popen]] = []

    def start(name, argv, **kw):
        out = open(state / f"{name}.stdout", "ab")
        try:
            p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True, **kw)
        finally:
            out.close()
        procs.append((name, p))
        cluster.pids[name] = p.pid
        return p

    def fail(msg):
        details = [msg]
        for name, p in procs:
            details.append(f"{name} pid={p.pid} rc={p.poll()}")
        for log in (cluster.ctld_log, cluster.slurmd_log,
                    *sorted(state.glob("*.stdout"))):
            details.append(f"--- tail of {log} ---\n{_tail(log)}")
        raise RuntimeError("\n".join(details))

    try:
        if not _munge_works():
            _ensure_munge_dirs()
            start("munged", ["munged", "--foreground"],
                  user="munge", group="munge", extra_groups=[])
            deadline = time.monotonic() + 15
            while not _munge_works():
                if procs[-1][1].poll() is not None or time.monotonic() > deadline:
                    fail("munged did not come up")
                time.sleep(0.2)

        start("slurmctld", ["slurmctld", "-D", "-f", str(paths["conf"])])
        deadline = time.monotonic() + start_timeout
        while subprocess.run(["scontrol", "ping"], env=env, capture_output=True,
                             timeout=15).returncode != 0:
            if procs[-1][1].poll() is not None or time.monotonic() > deadline:
                fail("slurmctld did not come up")
            time.sleep(0.3)

        start("slurmd", ["slurmd", "-D", "-f", str(paths["conf"]), "-N", node])
        state_now = ""
        while True:
            state_now = _node_state(env)
            if state_now in ("idle", "mixed", "allocated"):
                break
            bad = any(w in state_now for w in ("inval", "drain"))
            if bad or any(p.poll() is not None for _n, p in procs) \
                    or time.monotonic() > deadline:
                fail(f"node {node} did not become idle within "
                     f"{start_timeout}s (sinfo state: {state_now!r})")
            time.sleep(0.5)

        yield cluster
    finally:
        # Cancel leftover jobs of *this* cluster (SLURM_CONF points to ours) so
        # slurmstepd children exit, then stop our daemons by pid.
        try:
            if any(n == "slurmctld" and p.poll() is None for n, p in procs):
                subprocess.run(["scancel", "--full", "--quiet", "--partition",
                                PARTITION], env=env, capture_output=True,
                               timeout=30)
                end = time.monotonic() + 10
                while time.monotonic() < end:
                    r = subprocess.run(["squeue", "-h", "-t", "PD,R,CG"],
                                       env=env, capture_output=True, text=True,
                                       timeout=15)
                    if r.returncode != 0 or not r.stdout.strip():
                        break
                    time.sleep(0.5)
        except (OSError, subprocess.SubprocessError):
            pass
        finally:
            _stop(procs)
            shutil.rmtree(spool, ignore_errors=True)


def pids_alive(pids) -> list[int]:
    """Which of the given pids still exist (for teardown assertions)."""
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except ProcessLookupError:
            pass
    return alive


_JOBCOMP_RE = re.compile(r"JobId=(\d+)\b.*?\bName=(\S*)")
_CTLD_RE = re.compile(r"(?:sched: Allocate|_job_complete:) JobId=(\d+)")


def job_records(cluster: SlurmCluster) -> list[dict]:
    """Jobs that went through the controller: [{'id','name','state','tres'}].

    'tres' is the allocation, e.g. 'cpu=1,mem=200M,node=1,billing=1' (GPUs
    are not listed without slurmdbd: use job_details); empty when only the
    controller log was parsed.

    Uses sacct when accounting works, else the jobcomp/filetxt log (one line
    per finished job), else slurmctld's log (ids only).
    """
    r = subprocess.run(["sacct", "-X", "-n", "-P", "-o",
                        "JobID,JobName,State,AllocTRES",
                        "-S", "now-1day"],
                       env=cluster.env, capture_output=True, text=True,
                       timeout=30)
    if r.returncode == 0 and r.stdout.strip():
        recs = []
        for line in r.stdout.splitlines():
            parts = line.split("|")
            if len(parts) >= 4:
                recs.append({"id": parts[0], "name": parts[1],
                             "state": parts[2], "tres": parts[3]})
        return recs
    recs: dict[str, dict] = {}
    if cluster.jobcomp_log.exists():
        for line in cluster.jobcomp_log.read_text(errors="replace").splitlines():
            m = _JOBCOMP_RE.search(line)
            if m:
                st = re.search(r"\bJobState=(\S+)", line)
                tres = re.search(r"\bTres=(\S*)", line)
                recs[m.group(1)] = {"id": m.group(1), "name": m.group(2),
                                    "state": st.group(1) if st else "",
                                    "tres": tres.group(1) if tres else ""}
    if cluster.ctld_log.exists():
        for m in _CTLD_RE.finditer(cluster.ctld_log.read_text(errors="replace")):
            recs.setdefault(m.group(1), {"id": m.group(1), "name": "",
                                         "state": "", "tres": ""})
    return sorted(recs.values(), key=lambda d: int(d["id"]))


def job_details(cluster: SlurmCluster, job_id: str) -> dict:
    """`scontrol show job` as a dict (e.g. 'TresPerJob': 'gres:gpu:1',
    'MinMemoryNode': '32000M', 'TimeLimit', 'Partition').  Finished jobs stay
    queryable for MIN_JOB_AGE seconds."""
    r = subprocess.run(["scontrol", "-o", "show", "job", str(job_id)],
                       env=cluster.env, capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:
        return {}
    return dict(kv.split("=", 1) for kv in r.stdout.split() if "=" in kv)


def jobs_seen(cluster: SlurmCluster) -> list[str]:
    """Ids of the jobs the controller allocated/finished (see job_records)."""
    return [r["id"] for r in job_records(cluster)]
