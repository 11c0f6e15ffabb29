"""Mutation testing: how many deliberately broken versions of the code the tests catch.

Run through gen_tables.py, like every other table of the book:

    python3 book/tools/gen_tables.py mutants                 # every file set (an hour or two)
    python3 book/tools/gen_tables.py mutants counter conn    # re-measure these sets only
    python3 book/tools/gen_tables.py mutants --table         # re-tabulate stored results
    python3 book/tools/gen_tables.py mutants --list          # the sets, their files and tests
    python3 book/tools/gen_tables.py mutants --retry events  # only what was missed, again

Two sets are sampled (`sample=4` below: every fourth mutant, spread over the files by
cargo-mutants' round-robin shard), because measuring all of them would cost hours here: the
event loop, whose mutants each run the socket suites, and the trace recorder. Their rows are
marked ¼; set `sample=1` to measure them whole.

cargo-mutants (https://mutants.rs) makes one *mutant* per small change it can make to a function
(return a default value, replace `<` with `<=`, delete a `!`, ...), builds it and runs tests on it.
A mutant some test fails on is *caught*; one every test passes is *missed*: a change the tests
cannot see. *Unviable* mutants do not compile; a *timeout* is a mutant on which a test hangs (a lost
wake-up, usually), which counts as detected.

Each file set is measured with the tests that cover it, not the whole suite, to keep the cost
down (2 cores, shared). And it is measured up to three times, because the model checkers' tests
and the normal ones cannot be built together (under `--cfg loom` or `--cfg shuttle` the socket
suites compile to nothing, and the models exist only there):

1. the **normal** run: the set's unit and integration tests, a debug build;
2. the **loom** run: the set's `tests/loom_*.rs` models under `RUSTFLAGS="--cfg loom"`, release,
   on the mutants the normal run missed only (a mutant counts as caught if any run catches it,
   so a later run need not see the others);
3. the **shuttle** run, likewise, for what is still missed (only the Shuttle backend has one).

All runs work in place in one scratch copy of the repository (target/mutants/tree, refreshed at
every start), whose own target directories stay warm from run to run: a mutant costs an
incremental build, not the several-minute fresh build cargo-mutants' default copy makes.
Results stay in target/mutants/SET/{normal,loom,shuttle}/mutants.out, and the table is rebuilt
from whatever is stored there, so measuring one set again after a change does not cost the
others.

The mutants known to be equivalent (no test could tell them from the original) are excluded in
.cargo/mutants.toml, each under a comment saying why; the table counts them per file and lists
them with those reasons. Not part of `.ci/run`: far too slow for CI.

Only the Python standard library is used; cargo-mutants is installed at the pinned version if
missing.
"""

import datetime
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import gen_tables
from gen_tables import ROOT

CARGO_MUTANTS = "27.1.0"
TREE = ROOT / "target" / "mutants" / "tree"
RESULTS = ROOT / "target" / "mutants"
CONFIG = ROOT / ".cargo" / "mutants.toml"


class FileSet:
    """Files measured together, and the runs that measure them: `normal` (the unit and
    integration tests, debug), then `loom` and `shuttle` (those model checkers' tests, release,
    under their `--cfg`) on what the runs before them missed."""

    def __init__(self, name, globs, normal, loom=(), shuttle=(), env=None, sample=1):
        self.name = name
        # 1: every mutant; n: every n-th (cargo-mutants' round-robin shard 0/n), where the
        # whole set would cost hours here.
        self.sample = sample
        self.globs = globs
        self.runs = [(kind, list(selection)) for kind, selection in
                     [("normal", normal), ("loom", loom), ("shuttle", shuttle)] if selection]
        self.env = env or {}


def tests(*names):
    return [a for n in names for a in ("--test", n)]


# ANCHOR: sets
SETS = [
    # LIN_CASES: 16 random programs per type instead of 128; the hunts for the buggy
    # variants, which decide most of what the checker catches, ignore it.
    FileSet("counter", ["src/counter.rs"], ["--lib"],
            tests("loom_counter", "loom_linearizable"), env={"LIN_CASES": "16"}),
    FileSet("limit", ["src/limit.rs"], ["--lib"],
            tests("loom_limit", "loom_linearizable", "loom_lifecycle"), env={"LIN_CASES": "16"}),
    FileSet("shutdown", ["src/shutdown.rs"], ["--lib"],
            tests("loom_shutdown", "loom_linearizable", "loom_lifecycle"),
            env={"LIN_CASES": "16"}),
    FileSet("registry", ["src/registry.rs"], ["--lib"],
            tests("loom_registry", "loom_lifecycle")),
    # The primitives; each model backend compiles only under its own `--cfg`.
    FileSet("sync", ["src/sync/*.rs"], ["--lib", *tests("backends")],
            tests("loom_monitor", "loom_pool", "loom_limit", "loom_shutdown", "loom_counter"),
            tests("shuttle_bugs")),
    # The failing-execution tables (chapter 6): their unit tests, and the models whose traces
    # the book includes, each compared with the committed text. Sampled: about 300 mutants,
    # most of them in the text layout, would take an hour on their own.
    FileSet("trace", ["src/sync/trace/**"], ["--lib"],
            tests("loom_counter", "loom_limit", "loom_shutdown", "loom_registry",
                  "loom_linearizable"),
            tests("shuttle_bugs"), env={"LIN_CASES": "16"}, sample=4),
    # `Conn` is sans-IO: no threads, nothing for a model checker to interleave.
    FileSet("conn", ["src/conn/**"], ["--lib", *tests("conn_model")]),
    # The socket suites, for the event-loop engine only (their harness reads ENGINES).
    # Sampled: about 200 mutants, each running the socket suites, would take hours. `watch`
    # and `stalled_writes` fill a socket's send buffer (the loop's queued output, its clocks).
    FileSet("events", ["src/server/events/**"],
            ["--lib", *tests("server_protocol", "server_concurrency", "server_shutdown",
                             "hostile", "hostile_fds", "watch", "stalled_writes")],
            tests("loom_events"), env={"ENGINES": "events"}, sample=4),
    # The one interpreter of `Conn`'s actions for a thread or a pool worker: its unit tests
    # over fake sockets, the socket suites for the thread engine, and the whole-server models
    # that run it over in-memory pipes.
    FileSet("driver", ["src/server/driver.rs"],
            ["--lib", *tests("server_protocol", "server_concurrency", "server_shutdown",
                             "hostile", "watch", "stalled_writes")],
            tests("loom_lifecycle"), tests("shuttle_server"), env={"ENGINES": "thread"}),
]
# ANCHOR_END: sets
BY_NAME = {s.name: s for s in SETS}
# The files where nothing may be missed (issue 14); elsewhere the goal is 95% of viable mutants.
NONE_MISSED = ("src/counter.rs", "src/limit.rs", "src/shutdown.rs", "src/conn/")
GOAL = 95.0


def say(text):
    print(text, file=sys.stderr, flush=True)


def ensure_cargo_mutants():
    have = subprocess.run(["cargo", "mutants", "--version"], capture_output=True, text=True)
    if have.returncode == 0 and CARGO_MUTANTS in have.stdout:
        return
    say(f"installing cargo-mutants {CARGO_MUTANTS}")
    subprocess.run(["cargo", "install", "cargo-mutants", "--version", CARGO_MUTANTS, "--locked"],
                   check=True)


def files_under(top):
    """Every file of the repository at `top`, relative, but target/ and .git."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(top):
        rel = Path(dirpath).relative_to(top)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if d not in ("target", ".git")
                           and not d.startswith("mutants.out")]
        found.update(rel / f for f in filenames)
    return found


def refresh_tree():
    """Makes the scratch tree a copy of the repository, all but target/ and .git, writing only
    the files that differ. A written file gets a new modification time, so cargo rebuilds what
    it touches. (Copying old times back, as `cp -p` would, can make a file older than the
    build of a mutant of it, and cargo would then keep running the mutant.)"""
    TREE.mkdir(parents=True, exist_ok=True)
    source, copy = files_under(ROOT), files_under(TREE)
    for rel in copy - source:
        (TREE / rel).unlink()
    for rel in source:
        data = (ROOT / rel).read_bytes()
        target = TREE / rel
        if rel in copy and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        shutil.copymode(ROOT / rel, target)


def regex_escape(text):
    """Escapes a mutant's name for cargo-mutants' `-F` (Rust's regex crate rejects some of
    Python's escapes, such as `\\ `)."""
    return "".join("\\" + c if c in r"\.+*?()|[]{}^$#&-~" else c for c in text)


def cargo_mutants(fileset, kind, selection, only=None, suffix=""):
    """One cargo-mutants run in place in the scratch tree; returns its outcomes.json, parsed.
    Its files go to target/mutants/SET/KIND (KIND-retry for a retry)."""
    out = RESULTS / fileset.name / (kind + suffix)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    env = dict(os.environ)
    env.update(fileset.env)
    env["CARGO_TERM_COLOR"] = "never"
    if kind == "normal":
        env.pop("RUSTFLAGS", None)
        env["CARGO_TARGET_DIR"] = str(TREE / "target")
        extra = []
    else:
        # As `cargo loom` and `cargo shuttle` do (.cargo/config.toml): release, own target dir.
        env["RUSTFLAGS"] = f"--cfg {kind}"
        env["CARGO_TARGET_DIR"] = str(TREE / "target" / kind)
        extra = ["--release"]
    cmd = ["cargo", "mutants", "--in-place", "-d", str(TREE), "-o", str(out), "--no-shuffle"]
    for glob in fileset.globs:
        cmd += ["-f", glob]
    for name in only or []:
        cmd += ["-F", "^" + regex_escape(name) + "$"]
    if fileset.sample > 1 and not only:
        cmd += ["--shard", f"0/{fileset.sample}", "--sharding", "round-robin"]
    # -C: for the build as well as the test run, so only the set's test targets are built.
    for arg in extra + selection:
        cmd.append(f"--cargo-arg={arg}")
    shown = " ".join(f"{k}={v}" for k, v in fileset.env.items())
    say(f"[{fileset.name}/{kind}] {shown} cargo mutants ... {' '.join(extra + selection)}"
        + (f" ({len(only)} mutants)" if only else ""))
    start = time.time()
    proc = subprocess.run(cmd, env=env, cwd=TREE, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    (out / "console.txt").write_text(proc.stdout)
    # 0: all caught; 2: some missed; 3: some timed out. 4 is a failing baseline.
    if proc.returncode not in (0, 2, 3):
        sys.stderr.write(proc.stdout[-6000:])
        sys.exit(f"mutants.py: cargo mutants for {fileset.name} ({kind}) failed "
                 f"(exit {proc.returncode}); log in {out}")
    outcomes = json.loads((out / "mutants.out" / "outcomes.json").read_text())
    say(f"[{fileset.name}/{kind}] {time.time() - start:.0f} s")
    return outcomes


def mutant_outcomes(outcomes):
    """{mutant name: (file, outcome)} from a parsed outcomes.json."""
    kinds = {"CaughtMutant": "caught", "MissedMutant": "missed", "Unviable": "unviable",
             "Timeout": "timeout"}
    result = {}
    for o in outcomes["outcomes"]:
        scenario = o["scenario"]
        if scenario == "Baseline":
            continue
        mutant = scenario["Mutant"]
        result[mutant["name"]] = (mutant["file"], kinds[o["summary"]])
    return result


def seconds(outcomes):
    parse = datetime.datetime.fromisoformat
    start, end = (parse(outcomes[k][:26].rstrip("Z")) for k in ("start_time", "end_time"))
    return (end - start).total_seconds()


def measure(fileset, commit, retry=False):
    """Every run of one set; stores the merged result in target/mutants/SET/result.json.
    `commit` says what the scratch tree was copied from. With `retry`, only the mutants the
    stored result missed run again, through every run of the set as it is now (after tests
    were added for them; the code they mutate must be unchanged, or their names would not
    match), and the result keeps both commits."""
    stored = json.loads((RESULTS / fileset.name / "result.json").read_text()) if retry else None
    merged = {n: list(v) for n, v in stored["mutants"].items()} if stored else {}
    took = stored["seconds"] if stored else 0.0
    # A stored survivor named equivalent since is not run again (the table leaves it out).
    current = set(listed(fileset.globs)) if stored else None
    for kind, selection in fileset.runs:
        missed = [name for name, (_, outcome, _) in merged.items()
                  if outcome == "missed" and (current is None or name in current)]
        if merged and not missed:
            break
        only = missed if merged else None
        outcomes = cargo_mutants(fileset, kind, selection, only=only,
                                 suffix="-retry" if retry else "")
        for name, (file, outcome) in mutant_outcomes(outcomes).items():
            merged[name] = [file, outcome, kind]
        took += seconds(outcomes)
    result = {"set": fileset.name, "commit": stored["commit"] if stored else commit,
              "sample": fileset.sample, "date": datetime.date.today().isoformat(),
              "seconds": round(took), "mutants": merged}
    if stored:
        result["retried"] = commit
    (RESULTS / fileset.name / "result.json").write_text(json.dumps(result, indent=1))
    return result


# ---------------------------------------------------------------------------------------------
# The equivalent mutants, as .cargo/mutants.toml names them


def equivalents():
    """[(regex, why)] from .cargo/mutants.toml's exclude_re: each pattern with the comment
    lines just above it (a tiny reader for the one shape that file uses, no TOML library)."""
    text = CONFIG.read_text()
    body = re.search(r"^exclude_re = \[\n(.*?)^\]", text, re.S | re.M)
    found, why = [], []
    for line in (body.group(1).splitlines() if body else []):
        line = line.strip()
        if line.startswith("#"):
            why.append(line.lstrip("# ").strip())
        elif line.startswith("'"):
            found.append((line.rstrip(",")[1:-1], " ".join(why)))  # a TOML literal string
            why = []
        elif line.startswith('"'):
            found.append((json.loads(line.rstrip(",")), " ".join(why)))  # basic: JSON-like
            why = []
    return found


def shown(glob):
    """A glob as the book shows it: `src/conn/**` is the directory `src/conn/`."""
    return glob[:-2] if glob.endswith("/**") else glob


def listed(globs, config=True):
    cmd = ["cargo", "mutants", "--list", "-d", str(ROOT)] + [a for g in globs for a in ("-f", g)]
    if not config:
        cmd.append("--no-config")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------
# The table


def pct(caught, viable):
    return f"{100 * caught / viable:.0f}%" if viable else "–"


def unplaced(name):
    """A mutant's name without its line and column, which move with every edit above it (the
    way `.cargo/mutants.toml` names them): a stored result still matches the code it measured."""
    return re.sub(r":\d+:\d+:", ":", name, count=1)


def tabulate(results):
    all_globs = [g for s in SETS for g in s.globs]
    # Equivalent mutants: generated without the config's exclusions, absent with them.
    # (The buggy variants are outside every set's globs, so exclude_globs plays no part.)
    with_config = set(listed(all_globs))
    excluded = [m for m in listed(all_globs, config=False) if m not in with_config]
    excluded_set = {unplaced(m) for m in excluded}
    reasons = equivalents()

    # Narrow headers and short paths: the table must fit the book's column. (The equivalent
    # mutants have a table of their own below.)
    rows = ["| file | caught | by a model | missed | unviable | timeout | score |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    survivors, failures = [], []
    totals = [0] * 5
    for fileset in SETS:
        result = results.get(fileset.name)
        if not result:
            rows.append(f"| *{fileset.name}: not measured* | | | | | | |")
            continue
        # A mutant excluded since this set was measured no longer counts.
        measured = {n: v for n, v in result["mutants"].items()
                    if unplaced(n) not in excluded_set}
        files = sorted({file for file, _, _ in measured.values()})
        for file in files:
            mine = [(n, o, r) for n, (f, o, r) in measured.items() if f == file]
            count = {k: sum(1 for _, o, _ in mine if o == k)
                     for k in ("caught", "missed", "unviable", "timeout")}
            by_loom = sum(1 for _, o, r in mine if o == "caught" and r != "normal")
            detected = count["caught"] + count["timeout"]
            viable = detected + count["missed"]
            row = [count["caught"], by_loom, count["missed"], count["unviable"],
                   count["timeout"]]
            totals = [a + b for a, b in zip(totals, row)]
            sample = result.get("sample", 1)
            short = file.removeprefix("src/").removeprefix("server/")
            label = f"`{short}`" + (" ¼" if sample == 4 else
                                                          f" (1 in {sample})" if sample > 1 else "")
            rows.append(f"| {label} | " + " | ".join(str(x) for x in row)
                        + f" | {pct(detected, viable)} |")
            survivors += sorted(n for n, o, _ in mine if o == "missed")
            strict = any(file.startswith(p) for p in NONE_MISSED)
            if (strict and count["missed"]) or (viable and 100 * detected / viable < GOAL):
                failures.append(file)
    detected, viable = totals[0] + totals[4], totals[0] + totals[2] + totals[4]
    rows.append("| **all** | " + " | ".join(f"**{x}**" for x in totals)
                + f" | **{pct(detected, viable)}** |")

    body = ["\n".join(rows)]
    if survivors:
        body.append("Missed (no test fails on them):\n\n"
                    + "\n".join(f"- `{name}`" for name in survivors))
    else:
        body.append("Missed: none.")
    if excluded:
        lines = ["| file | equivalent mutant (excluded in `.cargo/mutants.toml`) | why no test "
                 "can tell it from the original |", "|---|---|---|"]
        for name in excluded:
            described = name.split(": ", 1)[1]
            why = next((w for p, w in reasons if re.search(p, name)), "?")
            lines.append(f"| `{name.split(':', 1)[0]}` | `{described}` | {why} |")
        body.append("\n".join(lines))

    # A list, not a table: the test selections are long.
    runs = ["How each set was measured (`cargo test` arguments of each run; loom and Shuttle "
            "runs are `--release` under their `--cfg`):", ""]
    for fileset in SETS:
        result = results.get(fileset.name, {})
        env = " ".join(f"{k}={v}" for k, v in fileset.env.items())
        cells = [f"{kind} `{' '.join(selection)}`" for kind, selection in fileset.runs]
        at = f"{result['commit']}, {result['date']}" if result else "not measured"
        if result.get("retried"):
            at += f"; its missed mutants again at {result['retried']}"
        minutes = f"{result['seconds'] / 60:.0f} min" if result else "–"
        files = ", ".join(f"`{shown(g)}`" for g in fileset.globs)
        sampled = f", 1 mutant in {fileset.sample}" if fileset.sample > 1 else ""
        runs.append(f"- **{fileset.name}** ({files}{f', `{env}`' if env else ''}{sampled}): "
                    + "; ".join(cells) + f". {minutes}, measured at {at}.")
    body.append("\n".join(runs))
    return "\n\n".join(body), failures, survivors


def load_results():
    results = {}
    for fileset in SETS:
        path = RESULTS / fileset.name / "result.json"
        if path.exists():
            results[fileset.name] = json.loads(path.read_text())
    return results


NOTE = ("A mutant is *caught* if some run catches it: the set's normal tests, or, for what they "
        "missed, its loom models, then its Shuttle models. *By a model*: of those caught, caught only by a "
        "model checker. *Score*: (caught + timeout) / (caught + missed + timeout). Each set "
        "runs its own tests, as the list says, with the time its runs took. "
        f"cargo-mutants {CARGO_MUTANTS}, each mutant built "
        "incrementally in a scratch copy. A file marked ¼ was sampled: every fourth of its set's "
        "mutants, chosen by cargo-mutants' round-robin shard.")


def main(argv):
    if "--list" in argv:
        for s in SETS:
            sampled = f"  (1 mutant in {s.sample})" if s.sample > 1 else ""
            print(f"{s.name}: {' '.join(s.globs)}  {s.env or ''}{sampled}")
            for kind, selection in s.runs:
                print(f"    {kind}: {' '.join(selection)}")
        return 0
    wanted = [a for a in argv if not a.startswith("-")]
    unknown = [w for w in wanted if w not in BY_NAME]
    if unknown:
        sys.exit(f"mutants.py: unknown set(s) {unknown}; the sets are {list(BY_NAME)}")
    if "--table" not in argv:
        ensure_cargo_mutants()
        # One run at a time: they mutate the same scratch tree in place.
        RESULTS.mkdir(parents=True, exist_ok=True)
        lock = open(RESULTS / "lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.exit(f"mutants.py: another run holds {RESULTS / 'lock'}")
        refresh_tree()
        commit = gen_tables.commit()
        start = time.time()
        for fileset in [BY_NAME[w] for w in wanted] or SETS:
            measure(fileset, commit, retry="--retry" in argv)
        say(f"mutants.py: measured in {(time.time() - start) / 60:.0f} min")
    table, failures, survivors = tabulate(load_results())
    print(table)
    sets = " ".join(wanted) if wanted else "(every set)"
    command = (f"cargo mutants --in-place, per file set {sets}: its normal tests, then its loom "
               "and Shuttle models on what they missed")
    if "--table" in argv:
        # Nothing measured now: say where each set's numbers come from.
        measured = sorted({r["commit"] for r in load_results().values()})
        command = ("mutants.py --table: each set's stored result (measured at "
                   f"{', '.join(measured)}), with the equivalents .cargo/mutants.toml names now")
    gen_tables.write("mutants.md", table, "mutants", command, note=NOTE)
    if survivors:
        say(f"mutants.py: {len(survivors)} missed")
    if failures:
        say(f"mutants.py: below the goal: {', '.join(failures)}")
    return 0
