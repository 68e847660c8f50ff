#!/usr/bin/env python3
# examples/lox/tests/run.py: runs Lox test programs and compares their
# stdout, stderr and exit status with the expectations written in them.
#
# Usage: run.py <lox-binary> <file-or-dir>...
#
# Expectations are comments in the .lox file (after the reference test
# suite's style):
#   // expect: TEXT                 a line of stdout
#   // expect runtime error: MSG    stderr starts with MSG; exit 70; the
#                                   trace follows from `// trace:` lines,
#                                   or is "[line L] in script", L being
#                                   this comment's line
#   // trace: [line N] in f()       a line of the runtime error's trace
#   // trace: [line N] in f() (xK)  the same line K times
#   // Error at 'x': MSG            a compile error on this comment's line
#                                   ("[line L] Error at 'x': MSG"); exit 65
#   // [line N] Error ...           a compile error line as is; exit 65
#   // stderr: TEXT                 any other stderr line
#   // exit: N                      the exit status, if not implied
#   // max-rss: N                   peak RSS of the run must stay under N
#                                   KiB (memory bounds of GC tests; not
#                                   checked with LOX_TEST_NO_RSS=1, which
#                                   meson sets in sanitizer builds)
#   // env: K=V                     run with this environment variable
# A file X.repl is fed to `lox` (no argument) on stdin instead, and its
# stdout and stderr must equal X.repl.out and X.repl.err (if present).
# Prints one line per failing test and a summary; exits 1 on a failure.
import os
import re
import subprocess
import sys
import tempfile

EXPECT = re.compile(r"// expect: ?(.*)")
RUNTIME = re.compile(r"// expect runtime error: (.+)")
TRACE = re.compile(r"// trace: (.+)")
REPEAT = re.compile(r"(.*) \(x(\d+)\)$")
ERROR_HERE = re.compile(r"// (Error.*)")
ERROR_LINE = re.compile(r"// (\[line \d+\] Error.*)")
STDERR = re.compile(r"// stderr: (.*)")
EXIT = re.compile(r"// exit: (\d+)")
MAXRSS = re.compile(r"// max-rss: (\d+)")
ENV = re.compile(r"// env: (\w+)=(\S*)")
# Sanitizers' shadow memory inflates RSS; the heap limit still holds.
NO_RSS = os.environ.get("LOX_TEST_NO_RSS") == "1"


def parse(path):
    out, err, trace = [], [], []
    status, runtime_line, maxrss, env = None, None, None, {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            m = EXPECT.search(line)
            if m:
                out.append(m.group(1))
                continue
            m = RUNTIME.search(line)
            if m:
                err.append(m.group(1))
                runtime_line = n
                status = 70 if status is None else status
                continue
            m = TRACE.search(line)
            if m:
                r = REPEAT.match(m.group(1))
                if r:
                    trace += [r.group(1)] * int(r.group(2))
                else:
                    trace.append(m.group(1))
                continue
            m = ERROR_LINE.search(line)
            if m:
                err.append(m.group(1))
                status = 65 if status is None else status
                continue
            m = ERROR_HERE.search(line)
            if m:
                err.append("[line %d] %s" % (n, m.group(1)))
                status = 65 if status is None else status
                continue
            m = STDERR.search(line)
            if m:
                err.append(m.group(1))
                continue
            m = EXIT.search(line)
            if m:
                status = int(m.group(1))
                continue
            m = MAXRSS.search(line)
            if m:
                maxrss = int(m.group(1))
                continue
            m = ENV.search(line)
            if m:
                env[m.group(1)] = m.group(2)
    if runtime_line is not None:
        err += trace or ["[line %d] in script" % runtime_line]
    return out, err, status or 0, maxrss, env


def run(argv, stdin, env):
    full = dict(os.environ)
    # TSan sleeps a second at exit by default: not needed per program
    full["TSAN_OPTIONS"] = full.get("TSAN_OPTIONS", "") + ":atexit_sleep_ms=0"
    full.update(env)
    with tempfile.TemporaryFile() as o, tempfile.TemporaryFile() as e:
        p = subprocess.Popen(argv, stdin=stdin, stdout=o, stderr=e,
                             env=full)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        o.seek(0)
        e.seek(0)
        return (o.read().decode("utf-8", "replace"),
                e.read().decode("utf-8", "replace"), p.returncode,
                ru.ru_maxrss)


def show(lines):
    return "".join("\n      | " + s for s in lines) or " (nothing)"


def check_lox(lox, path):
    out, err, status, maxrss, env = parse(path)
    got_out, got_err, got_status, rss = run([lox, path],
                                            subprocess.DEVNULL, env)
    problems = []
    if got_out.splitlines() != out:
        problems.append("stdout:%s\n    wanted:%s" %
                        (show(got_out.splitlines()), show(out)))
    if got_err.splitlines() != err:
        problems.append("stderr:%s\n    wanted:%s" %
                        (show(got_err.splitlines()), show(err)))
    if got_status != status:
        problems.append("exit %d, wanted %d" % (got_status, status))
    if maxrss is not None and rss > maxrss and not NO_RSS:
        problems.append("peak RSS %d KiB over %d KiB" % (rss, maxrss))
    return problems


def check_repl(lox, path):
    def want(ext):
        try:
            with open(path + ext, encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            return ""
    with open(path, "rb") as stdin:
        got_out, got_err, got_status, _ = run([lox], stdin, {})
    problems = []
    if got_out != want(".out"):
        problems.append("stdout %r, wanted %r" % (got_out, want(".out")))
    if got_err != want(".err"):
        problems.append("stderr %r, wanted %r" % (got_err, want(".err")))
    if got_status != 0:
        problems.append("exit %d, wanted 0" % got_status)
    return problems


def main():
    if len(sys.argv) < 3:
        print("usage: run.py <lox> <file-or-dir>...", file=sys.stderr)
        return 2
    lox = sys.argv[1]
    files = []
    for a in sys.argv[2:]:
        if os.path.isdir(a):
            files += sorted(os.path.join(a, f) for f in os.listdir(a)
                            if f.endswith((".lox", ".repl")))
        else:
            files.append(a)
    failed = 0
    for path in files:
        check = check_repl if path.endswith(".repl") else check_lox
        problems = check(lox, path)
        if problems:
            failed += 1
            print("FAIL %s\n    %s" % (path, "\n    ".join(problems)))
    print("%d of %d Lox tests passed" % (len(files) - failed, len(files)))
    return 1 if failed or not files else 0


if __name__ == "__main__":
    sys.exit(main())
