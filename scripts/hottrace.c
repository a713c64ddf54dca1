// hottrace STARTS OUT IMAGE PROG ARG... -- which of IMAGE's functions run, in the order they first
// run, while PROG (IMAGE itself, or a script that runs it) and everything it starts runs.
// (scripts/hot-order.py builds and calls it; see there).
//
// STARTS lists the start addresses of IMAGE's functions (hex, one per line; link-time addresses of
// a static-pie, i.e. offsets from its load base). PROG runs under ptrace with every process it
// forks or clones, until the last of them is gone; whenever one execs an image whose mapping is
// IMAGE's file (same device and inode, as berth's sealed re-exec from a read-only clone of its
// mount is), an int3 is written over the first byte of every listed function through
// /proc/PID/mem (the file is untouched). The first time a process reaches one, its address is
// appended to OUT, the byte is put back and the process goes on. A forked child keeps its parent's
// remaining breakpoints and loses each one as it reaches it. Exit status: PROG's.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t *starts;
static size_t nstarts;
static uint8_t *reported; // per start: already written to OUT
static dev_t prog_dev;
static ino_t prog_ino;

#define MAXP 4096
static struct {
    pid_t pid;
    uint64_t base; // load base of IMAGE, 0 = none
    uint8_t *orig; // original first bytes, per start (shared after fork: same image)
    int fresh; // its first (SIGSTOP) stop is still to come
    int known; // its parent's fork event has been seen (or it is PROG)
    int held;  // stopped at its first stop until the parent's event tells its image
} procs[MAXP];
static int nprocs;

static int find(pid_t p) {
    for (int i = 0; i < nprocs; i++)
        if (procs[i].pid == p) return i;
    return -1;
}

static int add(pid_t p) {
    int i = find(p);
    if (i >= 0) return i;
    for (i = 0; i < nprocs; i++)
        if (procs[i].pid == 0) break;
    if (i == nprocs) {
        if (nprocs == MAXP) {
            fprintf(stderr, "hottrace: too many processes\n");
            exit(1);
        }
        nprocs++;
    }
    procs[i].pid = p;
    procs[i].base = 0;
    procs[i].orig = NULL;
    procs[i].fresh = 1;
    procs[i].known = 0;
    procs[i].held = 0;
    return i;
}

static int cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static long find_start(uint64_t off) {
    size_t lo = 0, hi = nstarts;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (starts[mid] < off) lo = mid + 1;
        else hi = mid;
    }
    return lo < nstarts && starts[lo] == off ? (long)lo : -1;
}

// The load base of IMAGE in process p (its lowest mapping of IMAGE's file), or 0.
static uint64_t image_base(pid_t p) {
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/maps", p);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    uint64_t base = 0;
    while (fgets(line, sizeof line, f)) {
        uint64_t lo, hi, off, ino;
        unsigned maj, min;
        char perm[8];
        if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &lo, &hi, perm, &off, &maj, &min, &ino) != 7)
            continue;
        if (ino == prog_ino && makedev(maj, min) == prog_dev && !base) base = lo - off;
    }
    fclose(f);
    return base;
}

static int mem_fd(pid_t p) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", p);
    return open(path, O_RDWR | O_CLOEXEC);
}

static void arm(int i) {
    int fd = mem_fd(procs[i].pid);
    if (fd < 0) {
        perror("hottrace: open /proc/PID/mem");
        exit(1);
    }
    uint8_t *orig = malloc(nstarts), cc = 0xcc;
    for (size_t k = 0; k < nstarts; k++) {
        if (pread(fd, &orig[k], 1, (off_t)(procs[i].base + starts[k])) != 1 ||
            pwrite(fd, &cc, 1, (off_t)(procs[i].base + starts[k])) != 1) {
            perror("hottrace: patch");
            exit(1);
        }
    }
    close(fd);
    procs[i].orig = orig;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: hottrace STARTS OUT IMAGE PROG ARG...\n");
        return 2;
    }
    FILE *s = fopen(argv[1], "r");
    if (!s) {
        perror(argv[1]);
        return 1;
    }
    size_t cap = 1024;
    starts = malloc(cap * sizeof *starts);
    char line[128];
    while (fgets(line, sizeof line, s)) {
        if (nstarts == cap) starts = realloc(starts, (cap *= 2) * sizeof *starts);
        starts[nstarts++] = strtoull(line, NULL, 16);
    }
    fclose(s);
    qsort(starts, nstarts, sizeof *starts, cmp);
    reported = calloc(nstarts, 1);
    struct stat st_prog;
    if (stat(argv[3], &st_prog) != 0) {
        perror(argv[3]);
        return 1;
    }
    prog_dev = st_prog.st_dev;
    prog_ino = st_prog.st_ino;
    FILE *out = fopen(argv[2], "w");
    if (!out) {
        perror(argv[2]);
        return 1;
    }

    pid_t child = fork();
    if (child == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        execv(argv[4], argv + 4);
        _exit(127);
    }
    int st;
    waitpid(child, &st, 0);
    ptrace(PTRACE_SETOPTIONS, child, 0,
           PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC |
               PTRACE_O_EXITKILL);
    int c0 = add(child);
    procs[c0].fresh = 0;
    procs[c0].known = 1;
    ptrace(PTRACE_CONT, child, 0, 0);
    int live = 1, rc = 0;
    long hits = 0;
    while (live > 0) {
        pid_t p = waitpid(-1, &st, __WALL);
        if (p < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            if (p == child) rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            int i = find(p);
            if (i >= 0) procs[i].pid = 0;
            live--;
            continue;
        }
        if (!WIFSTOPPED(st)) continue;
        int i = find(p);
        if (i < 0) {
            i = add(p);
            live++;
        }
        int sig = WSTOPSIG(st), deliver = 0, ev = st >> 16;
        if (ev == PTRACE_EVENT_EXEC) {
            procs[i].base = image_base(p);
            procs[i].orig = NULL;
            if (procs[i].base) arm(i);
        } else if (ev == PTRACE_EVENT_CLONE || ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK) {
            unsigned long np;
            ptrace(PTRACE_GETEVENTMSG, p, 0, &np);
            int j = find((pid_t)np);
            if (j < 0) {
                j = add((pid_t)np);
                live++;
            }
            procs[j].base = procs[i].base;
            procs[j].orig = procs[i].orig;
            procs[j].known = 1;
            if (procs[j].held) {
                procs[j].held = 0;
                ptrace(PTRACE_CONT, (pid_t)np, 0, 0);
            }
        } else if (ev) {
            // other events: nothing to deliver
        } else if (sig == SIGTRAP) {
            struct user_regs_struct r;
            long k = -1;
            if (procs[i].base && ptrace(PTRACE_GETREGS, p, 0, &r) == 0)
                k = find_start(r.rip - 1 - procs[i].base);
            if (k >= 0) {
                int fd = mem_fd(p);
                if (fd < 0 || pwrite(fd, &procs[i].orig[k], 1, (off_t)(r.rip - 1)) != 1) {
                    perror("hottrace: unpatch");
                    exit(1);
                }
                close(fd);
                r.rip -= 1;
                ptrace(PTRACE_SETREGS, p, 0, &r);
                if (!reported[k]) {
                    reported[k] = 1;
                    fprintf(out, "%lx\n", starts[k]);
                    hits++;
                }
            } else {
                deliver = sig;
            }
        } else if (sig == SIGSTOP && procs[i].fresh) {
            // a new child's first stop: held until its parent's event says what it runs
            procs[i].fresh = 0;
            if (!procs[i].known) {
                procs[i].held = 1;
                continue;
            }
        } else {
            deliver = sig;
        }
        procs[i].fresh = 0;
        ptrace(PTRACE_CONT, p, 0, deliver);
    }
    fclose(out);
    fprintf(stderr, "hottrace: %ld of %zu functions ran; exit %d\n", hits, nstarts, rc);
    return rc;
}
