#!/usr/bin/env python3
"""berth vs runc vs crun, interleaved in one run. Called by scripts/bench.sh (see there)."""
import json, os, time, shutil, statistics, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BERTH = os.path.join(ROOT, "target/x86_64-unknown-linux-musl/release/berth")
# The runtimes compared, from the environment where given: CRUN=/path/to/crun and RUNC=/path/to/runc
# replace Debian's; BENCH_RUNTIMES="crun-1.27=/path/to/crun ..." adds rows (a name starting with
# "crun" or "runc" is run as that runtime is); BERTH_BASELINE=/path/to/an/older/berth adds a
# "berth-base" row, to see what a change cost. The bench never downloads or builds a runtime.
RUNTIMES = {"berth": BERTH, "crun": os.environ.get("CRUN") or shutil.which("crun"),
            "runc": os.environ.get("RUNC") or shutil.which("runc")}
for item in os.environ.get("BENCH_RUNTIMES", "").split():
    name, _, path = item.partition("=")
    if not path or not os.access(path, os.X_OK):
        raise SystemExit(f"BENCH_RUNTIMES: {item!r}: NAME=PATH of an executable")
    RUNTIMES[name] = path
if os.environ.get("BERTH_BASELINE"):
    RUNTIMES["berth-base"] = os.environ["BERTH_BASELINE"]
for rt, path in RUNTIMES.items():
    if not path or not os.access(path, os.X_OK):
        raise SystemExit(f"bench: no {rt} binary ({path!r}); install it or name one in the environment")


def kind(rt):
    """crun, runc or berth: how a row's runtime is run."""
    return "crun" if rt.startswith("crun") else "runc" if rt.startswith("runc") else "berth"


# Global options per runtime kind. crun 1.8.1 refuses cgroup-v1 hybrid hosts ("drop all controllers
# from cgroupv2") unless told to manage no cgroups, which is also what berth does; runc has no such
# switch and creates its cgroups as usual.
GLOBAL_BY_KIND = {"berth": [], "crun": ["--cgroup-manager=disabled"], "runc": []}
GLOBAL = {rt: list(GLOBAL_BY_KIND[kind(rt)]) for rt in RUNTIMES}


# A typical Podman resources block (memory, pids, cpu shares, devices), for `bench.sh cgroups`.
PODMAN_RESOURCES = {
    "memory": {"limit": 536870912},
    "pids": {"limit": 2048},
    "cpu": {"shares": 1024},
    "devices": [{"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
                {"allow": True, "type": "c", "major": 136, "access": "rwm"}],
}


def print_medians(res):
    """Prints the median wall, CPU and peak RSS of each row; returns them by runtime."""
    print(f"{'runtime':10} {'wall ms':>9} {'CPU ms':>9} {'peak RSS MiB':>13}")
    med = {}
    for rt, r in res.items():
        med[rt] = (statistics.median(r["wall"]) * 1e3, statistics.median(r["cpu"]) * 1e3,
                   statistics.median(r["rss"]) / 1024)
        print(f"{rt:10} {med[rt][0]:9.2f} {med[rt][1]:9.2f} {med[rt][2]:13.2f}")
    return med


def print_ratios(med):
    """berth's ratios to every other runtime, as measured and net of the (harness) row."""
    h = med["(harness)"]
    for other in (rt for rt in RUNTIMES if kind(rt) != "berth"):
        w, c, m = (med["berth"][k] / med[other][k] if med[other][k] else float("nan") for k in range(3))
        nw, nc = ((med["berth"][k] - h[k]) / (med[other][k] - h[k]) for k in range(2))
        print(f"berth/{other}: wall {w:.2f}x  CPU {c:.2f}x  RSS {m:.2f}x   "
              f"net of the harness row: wall {nw:.2f}x  CPU {nc:.2f}x")
    print("(harness) is GNU time running /bin/true: the cost every row above includes.")


def bundle(work, extra_mounts=0, resources=None, masked=0):
    b = os.path.join(work, f"bundle-{extra_mounts}-{'r' if resources else 'n'}-{masked}")
    os.makedirs(b)
    subprocess.run([BERTH, "spec", "--bundle", b], check=True)
    # A copy, not a symlink: runc refuses a symlinked rootfs.
    subprocess.run(["cp", "-a", os.path.join(ROOT, "rootfs"), os.path.join(b, "rootfs")], check=True)
    with open(os.path.join(b, "config.json")) as f:
        c = json.load(f)
    c["ociVersion"] = "1.0.2-dev"  # crun 1.8.1 refuses "1.2.0"
    c["process"]["terminal"] = False
    c["process"]["args"] = ["/bin/true"]
    if resources:
        c["linux"]["resources"] = resources
    for i in range(masked):
        # As Kubernetes masks one thermal_throttle directory per CPU on a big node.
        os.makedirs(os.path.join(b, "rootfs", "masked", f"d{i}"))
        c["linux"]["maskedPaths"].append(f"/masked/d{i}")
    if extra_mounts:
        src = os.path.join(work, "src")
        os.makedirs(src, exist_ok=True)
        for i in range(extra_mounts):
            c["mounts"].append({"destination": f"/mnt/m{i}", "type": "bind", "source": src,
                                "options": ["rbind", "ro" if i % 2 else "rw"]})
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(c, f)
    return b


def once(rt, b, state, i):
    """Returns (wall s, CPU s, peak RSS KiB) of one `run`. GNU time runs the runtime and reports its
    peak RSS (Python's own fork would count Python's 14 MiB); wait4 on GNU time gives the CPU time of
    the runtime and everything it waited for (the container's init included) with microsecond
    accounting, plus GNU time's own ~0.3 ms, the same for every runtime."""
    t = time.perf_counter()
    p = subprocess.Popen(["/usr/bin/time", "-f", "%M", RUNTIMES[rt], *GLOBAL[rt], "--root", state, "run",
                          "--bundle", b, f"bench-{rt}-{i}"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read().decode(errors="replace")
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{rt} failed: {err.strip()[-400:]}")
    return wall, ru.ru_utime + ru.ru_stime, int(err.strip().splitlines()[-1])


def launcher(i):
    """The measuring harness alone: GNU time running /bin/true, measured like a runtime."""
    t = time.perf_counter()
    p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "/bin/true"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, _, ru = os.wait4(p.pid, 0)
    p.stderr.close()
    return time.perf_counter() - t, ru.ru_utime + ru.ru_stime, int(err.strip().splitlines()[-1])


def startup(runs, resources=None, masked=0):
    work = tempfile.mkdtemp(prefix="berth-bench-")
    if resources:
        # Every runtime manages its cgroups (crun's cgroupfs driver; berth and runc by default).
        for rt in RUNTIMES:
            GLOBAL[rt] = []
    try:
        b = bundle(work, 0, resources, masked)
        res = {rt: {"wall": [], "cpu": [], "rss": []} for rt in list(RUNTIMES) + ["(harness)"]}
        for i in range(runs):
            wall, cpu, rss = launcher(i)
            res["(harness)"]["wall"].append(wall)
            res["(harness)"]["cpu"].append(cpu)
            res["(harness)"]["rss"].append(rss)
            for rt in RUNTIMES:
                wall, cpu, rss = once(rt, b, os.path.join(work, "state-" + rt), i)
                res[rt]["wall"].append(wall)
                res[rt]["cpu"].append(cpu)
                res[rt]["rss"].append(rss)
        what = "with a Podman-like linux.resources block, cgroups managed by every runtime" if resources else "default `berth spec` bundle"
        if masked:
            what += f" with {masked} more masked directories"
        print(f"run of /bin/true, {what} (terminal off), {runs} interleaved runs each")
        print_ratios(print_medians(res))
    finally:
        subprocess.run(["rm", "-rf", work])


FLOOR = os.path.join(ROOT, "target/x86_64-unknown-linux-musl/release/examples/mount_floor")


def volume_bundle(work, n, distinct=True):
    """The default bundle plus n bind volumes, every other one read-only (rbind), each from its own
    source directory (or all from one when not distinct); half the destinations exist in the image
    (/mnt/pI), half are created by the runtime (/mnt/cI)."""
    b = bundle(work, 0)
    os.rename(b, b + f"-{n}-{'d' if distinct else 's'}")
    b = b + f"-{n}-{'d' if distinct else 's'}"
    src = os.path.join(work, "vols")
    with open(os.path.join(b, "config.json")) as f:
        c = json.load(f)
    for i in range(n):
        s = os.path.join(src, f"s{i}" if distinct else "s0")
        os.makedirs(s, exist_ok=True)
        if i % 2 == 0:
            dest = f"/mnt/p{i}"
            os.makedirs(os.path.join(b, "rootfs", dest[1:]), exist_ok=True)
        else:
            dest = f"/mnt/c{i}"
        c["mounts"].append({"destination": dest, "type": "bind", "source": s,
                            "options": ["rbind", "ro" if i % 4 >= 2 else "rw"]})
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(c, f)
    return b


def remove_created(root):
    """Removes the destinations a run created (mnt/cI), so the next run creates them again."""
    mnt = os.path.join(root, "mnt")
    for e in os.listdir(mnt) if os.path.isdir(mnt) else []:
        if e.startswith("c"):
            os.rmdir(os.path.join(mnt, e))


def syscalls(rt, b, state, name):
    """How many system calls one `run` makes (the runtime and everything it forks), counted by
    strace -f -c."""
    out = os.path.join(state + "-strace")
    r = subprocess.run(["strace", "-f", "-c", "-o", out, RUNTIMES[rt], *GLOBAL[rt], "--root", state, "run",
                        "--bundle", b, name], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        return None
    with open(out) as f:
        for line in f:
            if line.rstrip().endswith(" total"):
                return int(line.split()[3])
    return None


def floor(work, n, runs=3, fresh=True):
    """µs per mount of the bare fd-based sequence (examples/mount_floor.rs) for n distinct volumes,
    measured as the runtimes are: the whole process (its mount namespace torn down at exit included),
    median wall time over that of n=0."""
    root = os.path.join(work, f"floor-{n}")
    for i in range(n):
        if i % 2 == 0:
            os.makedirs(os.path.join(root, "mnt", f"p{i}"), exist_ok=True)
        os.makedirs(os.path.join(work, "vols", f"s{i}"), exist_ok=True)
    os.makedirs(os.path.join(root, "mnt"), exist_ok=True)

    def wall(k):
        t = []
        for _ in range(runs):
            if fresh:
                remove_created(root)
            s = time.perf_counter()
            r = subprocess.run(["unshare", "-m", "--propagation", "private", FLOOR, root,
                                os.path.join(work, "vols"), str(k)], capture_output=True, text=True)
            if r.returncode != 0:
                return float("nan")
            t.append(time.perf_counter() - s)
        return statistics.median(t)
    return (wall(n) - wall(0)) * 1e6 / n


def mounts(runs, sizes=(0, 100, 1000, 10000)):
    """Mount scaling with N distinct bind volumes (and one row of N volumes from a single source)."""
    subprocess.run(["cargo", "build", "--release", "-q", "--example", "mount_floor"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="berth-bench-")
    try:
        print(f"run with N bind volumes, each from its own source directory (half read-only, half of the "
              f"destinations created by the runtime); {runs} interleaved runs per point; median wall ms, "
              f"µs per mount over N=0, peak RSS MiB, system calls per mount over N=0 (strace -f -c, one run); "
              f"floor: the bare fd sequence per volume (examples/mount_floor.rs)")
        print(f"{'N':>13} " + " ".join(f"{rt + ' ms':>10} {rt + ' µs/m':>10} {rt + ' MiB':>9} {rt + ' sc/m':>9}"
                                       for rt in RUNTIMES) + f" {'floor µs/m':>10}")
        base, base_sc = {}, {}
        # (N, distinct sources, destinations made afresh by every run); then the largest N again with
        # every destination already there (left by the previous row's runs), and with one source for all.
        points = [(n, True, True) for n in sizes] + [(sizes[-1], True, False), (sizes[-1], False, True)]
        for n, distinct, fresh in points:
            b = volume_bundle(work, n, distinct) if fresh else b
            row = {rt: {"wall": [], "rss": [], "err": None} for rt in RUNTIMES}
            for i in range(runs):
                for rt in RUNTIMES:
                    if row[rt]["err"]:
                        continue
                    try:
                        if fresh:
                            remove_created(os.path.join(b, "rootfs"))
                        wall, _, rss = once(rt, b, os.path.join(work, "state-" + rt),
                                            f"{n}-{distinct}-{fresh}-{i}")
                        row[rt]["rss"].append(rss)
                        row[rt]["wall"].append(wall)
                    except (SystemExit, subprocess.CalledProcessError):
                        row[rt]["err"] = "fails"
            cells = []
            for rt in RUNTIMES:
                r = row[rt]
                if r["err"] or not r["wall"]:
                    cells.append(f"{'fails':>10} {'-':>10} {'-':>9} {'-':>9}")
                    continue
                w = statistics.median(r["wall"]) * 1e3
                if n == 0:
                    base[rt] = w
                per = (w - base.get(rt, w)) * 1e3 / n if n else 0.0
                sc = ""
                if n == 0 or (distinct and fresh and n >= 1000):
                    remove_created(os.path.join(b, "rootfs"))
                    count = syscalls(rt, b, os.path.join(work, "sc-" + rt), f"sc-{n}")
                    if n == 0:
                        base_sc[rt] = count
                    elif count is not None and base_sc.get(rt) is not None:
                        sc = f"{(count - base_sc[rt]) / n:.1f}"
                cells.append(f"{w:10.2f} {per:10.2f} {statistics.median(r['rss']) / 1024:9.2f} {sc:>9}")
            fl = f"{floor(work, n, fresh=fresh):10.2f}" if distinct and n >= 100 else f"{'':>10}"
            label = f"{n}" if distinct and fresh else f"{n} (1 src)" if fresh else f"{n} (exist)"
            print(f"{label:>13} " + " ".join(cells) + f" {fl}", flush=True)
    finally:
        subprocess.run(["rm", "-rf", work])


def exec_bench(runs):
    """`exec` of /bin/true into a running container of each runtime, interleaved."""
    work = tempfile.mkdtemp(prefix="berth-bench-")
    started = []
    try:
        b = bundle(work)
        with open(os.path.join(b, "config.json")) as f:
            c = json.load(f)
        c["process"]["args"] = ["/bin/sleep", "100000"]
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(c, f)
        for rt in RUNTIMES:
            state = os.path.join(work, "state-" + rt)
            subprocess.run([RUNTIMES[rt], *GLOBAL[rt], "--root", state, "run", "-d", "--bundle", b,
                            f"exec-{rt}"], check=True, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            started.append((rt, state))
        res = {rt: {"wall": [], "cpu": [], "rss": []} for rt in list(RUNTIMES) + ["(harness)"]}
        for i in range(runs):
            for k, v in zip(("wall", "cpu", "rss"), launcher(i)):
                res["(harness)"][k].append(v)
            for rt in RUNTIMES:
                state = os.path.join(work, "state-" + rt)
                t = time.perf_counter()
                p = subprocess.Popen(["/usr/bin/time", "-f", "%M", RUNTIMES[rt], *GLOBAL[rt], "--root",
                                      state, "exec", f"exec-{rt}", "/bin/true"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
                err = p.stderr.read().decode(errors="replace")
                _, status, ru = os.wait4(p.pid, 0)
                p.stderr.close()
                if os.waitstatus_to_exitcode(status) != 0:
                    raise SystemExit(f"{rt} exec failed: {err.strip()[-300:]}")
                res[rt]["wall"].append(time.perf_counter() - t)
                res[rt]["cpu"].append(ru.ru_utime + ru.ru_stime)
                res[rt]["rss"].append(int(err.strip().splitlines()[-1]))
        print(f"exec of /bin/true into a running container, {runs} interleaved runs each")
        print_ratios(print_medians(res))
    finally:
        for rt, state in started:
            subprocess.run([RUNTIMES[rt], *GLOBAL[rt], "--root", state, "delete", "-f", f"exec-{rt}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", work])


# The masked and read-only paths containerd's CRI plugin sends for a Kubernetes container (its
# defaults), plus one thermal_throttle directory per CPU as on a node that has them.
K8S_MASKED = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
              "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
              "/sys/firmware", "/sys/devices/virtual/powercap"]
K8S_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
K8S_RESOURCES = {"memory": {"limit": 134217728}, "pids": {"limit": 1024},
                 "cpu": {"shares": 102, "quota": 50000, "period": 100000}}


def pod_bundle(work, i, rootfs):
    """Container i's bundle: runc's default spec made Kubernetes-like: containerd's masked and
    read-only paths, a cgroup with limits, and three volumes of its own (a configmap-like read-only
    directory, an emptyDir, the pod's hosts file), on a shared rootfs."""
    b = os.path.join(work, f"pod-{i}")
    os.makedirs(b)
    subprocess.run([BERTH, "spec", "--bundle", b], check=True)
    with open(os.path.join(b, "config.json")) as f:
        c = json.load(f)
    c["ociVersion"] = "1.0.2-dev"
    c["root"] = {"path": rootfs, "readonly": False}
    c["process"]["terminal"] = False
    c["process"]["args"] = ["/bin/sleep", "100000"]
    cpus = os.cpu_count() or 1
    c["linux"]["maskedPaths"] = K8S_MASKED + [f"/sys/devices/system/cpu/cpu{n}/thermal_throttle"
                                              for n in range(cpus)]
    c["linux"]["readonlyPaths"] = K8S_READONLY
    c["linux"]["resources"] = K8S_RESOURCES
    vol = os.path.join(work, "vols", str(i))
    for d in ("config", "empty"):
        os.makedirs(os.path.join(vol, d))
    with open(os.path.join(vol, "hosts"), "w") as f:
        f.write("127.0.0.1 localhost\n")
    c["mounts"] += [
        {"destination": "/etc/config", "type": "bind", "source": os.path.join(vol, "config"),
         "options": ["rbind", "ro"]},
        {"destination": "/data", "type": "bind", "source": os.path.join(vol, "empty"),
         "options": ["rbind", "rw"]},
        {"destination": "/etc/hosts", "type": "bind", "source": os.path.join(vol, "hosts"),
         "options": ["rbind", "rw"]},
    ]
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(c, f)
    return b


def timed(argv):
    """(wall s, CPU s of it and everything it waited for, peak RSS KiB) of one runtime call. Its
    stderr goes to a file: a created container's init keeps the stdio it was given open."""
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile() as rss:
        t = time.perf_counter()
        # GNU time reports the runtime's peak RSS (a child of Python's counts Python's until exec).
        p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss.name, *argv],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            err.seek(0)
            text = err.read().decode(errors="replace")
            raise SystemExit(f"{argv[0]} {' '.join(argv[-3:])} failed: {text.strip()[-300:]}")
        peak = int(open(rss.name).read().split()[-1])
    return wall, ru.ru_utime + ru.ru_stime, peak


def density(n, probes=10):
    """Pod density: n Kubernetes-like containers per runtime created and started (interleaved across
    runtimes), each exec'd `probes` times like a liveness probe, then killed and deleted. Reports the
    time to create and start all n, the CPU per container over its whole life (every runtime call,
    and what it waited for), and the peak RSS of any runtime call."""
    work = tempfile.mkdtemp(prefix="berth-density-")
    rootfs = os.path.join(work, "rootfs")
    subprocess.run(["cp", "-a", os.path.join(ROOT, "rootfs"), rootfs], check=True)
    for d in ("etc/config", "data"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    open(os.path.join(rootfs, "etc/hosts"), "a").close()
    bundles = [pod_bundle(work, i, rootfs) for i in range(n)]
    res = {rt: {"create": 0.0, "cpu": 0.0, "rss": 0, "exec": 0.0} for rt in RUNTIMES}
    live = []

    def call(rt, *args):
        state = os.path.join(work, "state-" + rt)
        return timed([RUNTIMES[rt], *GLOBAL[rt], "--root", state, *args])

    def account(rt, r, phase=None):
        res[rt]["cpu"] += r[1]
        res[rt]["rss"] = max(res[rt]["rss"], r[2])
        if phase:
            res[rt][phase] += r[0]

    try:
        for i, b in enumerate(bundles):
            for rt in RUNTIMES:
                cid = f"pod-{rt}-{i}"
                # Each container its own cgroup, as a kubelet's pods.
                with open(os.path.join(b, "config.json")) as f:
                    c = json.load(f)
                c["linux"]["cgroupsPath"] = f"/berth-density/{cid}"
                with open(os.path.join(b, "config.json"), "w") as f:
                    json.dump(c, f)
                account(rt, call(rt, "create", "--bundle", b, cid), "create")
                live.append((rt, cid))
                account(rt, call(rt, "start", cid), "create")
        for _ in range(probes):
            for rt, cid in live:
                account(rt, call(rt, "exec", cid, "/bin/true"), "exec")
        for rt, cid in list(live):
            account(rt, call(rt, "kill", cid, "KILL"))
        for rt, cid in list(live):
            for _ in range(200):
                try:
                    account(rt, call(rt, "delete", cid))
                    break
                except SystemExit:
                    time.sleep(0.01)  # not stopped yet
            live.remove((rt, cid))
        print(f"pod density: {n} containers per runtime (containerd's masked and read-only paths, "
              f"{os.cpu_count()} per-CPU masks, a cgroup with memory/pids/cpu limits, 3 volumes), "
              f"created and started interleaved, each exec'd {probes} times, killed, deleted")
        print(f"{'runtime':10} {'create+start all s':>19} {'CPU ms/container':>17} {'exec ms':>8} "
              f"{'peak RSS MiB':>13}")
        for rt, r in res.items():
            print(f"{rt:10} {r['create']:19.2f} {r['cpu'] * 1e3 / n:17.2f} "
                  f"{r['exec'] * 1e3 / (n * probes):8.2f} {r['rss'] / 1024:13.2f}")
        for other in (rt for rt in RUNTIMES if kind(rt) != "berth"):
            o, b = res[other], res["berth"]
            print(f"berth/{other}: create+start {b['create'] / o['create']:.2f}x  "
                  f"CPU per container {b['cpu'] / o['cpu']:.2f}x  RSS {b['rss'] / o['rss']:.2f}x")
    finally:
        for rt, cid in live:
            state = os.path.join(work, "state-" + rt)
            subprocess.run([RUNTIMES[rt], *GLOBAL[rt], "--root", state, "delete", "-f", cid],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", work])
        # The cgroup parent the runs made (rmdir: only while empty), in every hierarchy.
        subprocess.run("rmdir /sys/fs/cgroup/*/berth-density /sys/fs/cgroup/berth-density 2>/dev/null",
                       shell=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "density":
        for rt in RUNTIMES:
            GLOBAL[rt] = []  # every runtime manages the pods' cgroups
        density(int(args[1]) if len(args) > 1 else 100)
    elif args and args[0] == "mounts":
        mounts(int(args[1]) if len(args) > 1 else 5)
    elif args and args[0] == "exec":
        exec_bench(int(args[1]) if len(args) > 1 else 200)
    elif args and args[0] == "masked":
        startup(int(args[1]) if len(args) > 1 else 100, None, 400)
    elif args and args[0] == "cgroups":
        startup(int(args[1]) if len(args) > 1 else 200, PODMAN_RESOURCES)
    else:
        startup(int(args[0]) if args else 200)
