#!/usr/bin/env python3
"""Write scripts/hot-functions.txt, the order release builds lay berth's functions out in (build.rs).

    scripts/hot-order.py           trace, then write the list
    scripts/hot-order.py --check   trace the current list's build and say how well it fits

Builds the release binary with its linker map (BERTH_LINK_MAP), then runs the everyday verbs under
scripts/hottrace.c (a ptrace tracer that notes each function the first time any berth process of
the tree runs it): `run` of /bin/true with two volumes, the same with Kubernetes-like cgroup
limits, and create, start, exec, state, list, kill, delete of a sleeping container. The functions
that ran, in the order they first ran, are the list. Run as root on the bundled rootfs
(scripts/mkrootfs.sh); then `cargo build --release` links by the new list.
"""
import json, os, re, shutil, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BERTH = os.path.join(ROOT, "target/x86_64-unknown-linux-musl/release/berth")
LIST = os.path.join(ROOT, "scripts/hot-functions.txt")
HEADER = """\
# The functions a start, an exec and a delete run, in the order they first run: release builds put
# them first in .text (build.rs), so a start maps ~0.8 MB of berth's code instead of ~2 MB.
# Written by scripts/hot-order.py (run it again after large changes); names a build lacks are skipped.
"""
# An input section of .text in lld's map: address, size, and the section's name.
SECTION = re.compile(r"^\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s+\S+:\((\.text[^)]*)\)$")
# A symbol line: address, size 0, a name indented deeper than any file.
SYMBOL = re.compile(r"^\s+([0-9a-f]+)\s+[0-9a-f]+\s+[0-9a-f]+\s+\d+\s{9,}(\S+)$")
PREFIX = re.compile(r"^\.text\.(?:unlikely\.|hot\.|startup\.|exit\.)?")


def functions(map_path):
    """{address: (name, size)} of every function in the map's .text (the section's name where it
    is one function's, else the first symbol at its start, as musl's `.text` of each object)."""
    out, pending = {}, None
    with open(map_path) as f:
        for line in f:
            m = SECTION.match(line)
            if m:
                addr, size, sec = int(m.group(1), 16), int(m.group(2), 16), m.group(3)
                name = PREFIX.sub("", sec)
                pending = None
                if size and name != sec and name:
                    out[addr] = (name, size)
                elif size:
                    pending = (addr, size)
                continue
            m = SYMBOL.match(line)
            if m and pending and int(m.group(1), 16) == pending[0]:
                out[pending[0]] = (m.group(2), pending[1])
                pending = None
    return out


def bundle(work, name, args, resources=None):
    b = os.path.join(work, name)
    os.makedirs(b)
    subprocess.run([BERTH, "spec", "--bundle", b], check=True)
    with open(os.path.join(b, "config.json")) as f:
        c = json.load(f)
    c["root"]["path"] = os.path.join(ROOT, "rootfs")
    c["process"]["terminal"] = False
    c["process"]["args"] = args
    for i, opt in enumerate(("rw", "ro")):
        src = os.path.join(work, f"vol{i}")
        os.makedirs(src, exist_ok=True)
        c["mounts"].append({"destination": f"/mnt/v{i}", "type": "bind", "source": src,
                            "options": ["rbind", opt]})
    if resources:
        c["linux"]["resources"] = resources
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(c, f)
    return b


def trace(work):
    """The addresses of the functions that ran, in first-run order, over every workload."""
    tracer = os.path.join(work, "hottrace")
    subprocess.run(["gcc", "-O2", "-Wall", "-o", tracer, os.path.join(ROOT, "scripts/hottrace.c")],
                   check=True)
    link_map = os.path.join(work, "berth.map")
    env = dict(os.environ, BERTH_LINK_MAP=link_map)
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, env=env, check=True)
    funcs = functions(link_map)
    starts = os.path.join(work, "starts")
    with open(starts, "w") as f:
        f.writelines(f"{a:x}\n" for a in sorted(funcs))
    state = os.path.join(work, "state")
    limits = {"memory": {"limit": 134217728}, "pids": {"limit": 1024},
              "cpu": {"shares": 102, "quota": 50000, "period": 100000}}
    once = bundle(work, "once", ["/bin/true"])
    limited = bundle(work, "limited", ["/bin/true"], limits)
    sleeper = bundle(work, "sleeper", ["/bin/sleep", "1000"])
    b = [BERTH, "--root", state]
    # The sleeper's verbs in one traced shell, so that its init is traced from create to its exec.
    life = " && ".join(" ".join(b + v) for v in (
        ["create", "--bundle", sleeper, "h-sleep"], ["start", "h-sleep"],
        ["exec", "h-sleep", "/bin/true"], ["state", "h-sleep"], ["list"],
        ["kill", "h-sleep", "KILL"], ["delete", "-f", "h-sleep"]))
    programs = [b + ["run", "--bundle", once, "h-run"],
                b + ["run", "--bundle", limited, "h-limited"],
                ["/bin/sh", "-c", life]]
    order, seen = [], set()
    try:
        for i, prog in enumerate(programs):
            hits = os.path.join(work, f"hits{i}")
            subprocess.run([tracer, starts, hits, BERTH, *prog], check=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=120)
            with open(hits) as f:
                for line in f:
                    a = int(line, 16)
                    if a not in seen:
                        seen.add(a)
                        order.append(a)
    finally:
        subprocess.run(b + ["delete", "-f", "h-sleep"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return funcs, order


def windows(addrs, funcs):
    """How many 64 KiB windows (the kernel's fault-around) the functions' code touches."""
    w = set()
    for a in addrs:
        size = funcs[a][1]
        w.update(range(a >> 16, ((a + size - 1) >> 16) + 1))
    return len(w)


def main():
    if os.geteuid() != 0:
        raise SystemExit("hot-order: run as root (the traced verbs make containers)")
    if not os.access(os.path.join(ROOT, "rootfs/bin/busybox"), os.X_OK):
        raise SystemExit("hot-order: no rootfs (scripts/mkrootfs.sh)")
    check = sys.argv[1:] == ["--check"]
    work = tempfile.mkdtemp(prefix="berth-hot-")
    try:
        funcs, order = trace(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    names = [funcs[a][0] for a in order]
    size = sum(funcs[a][1] for a in order)
    listed = set()
    if os.path.exists(LIST):
        with open(LIST) as f:
            listed = {l.strip() for l in f if l.strip() and not l.startswith("#")}
    missing = [n for n in names if n not in listed]
    print(f"hot-order: {len(order)} of {len(funcs)} functions ran ({size // 1024} KiB of code, "
          f"in {windows(order, funcs)} of 64 KiB windows); {len(missing)} not in {LIST}")
    if check:
        return
    with open(LIST, "w") as f:
        f.write(HEADER)
        f.writelines(n + "\n" for n in names)
    print(f"hot-order: wrote {len(names)} names; `cargo build --release` links by them")


if __name__ == "__main__":
    main()
