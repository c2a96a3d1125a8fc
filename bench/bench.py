#!/usr/bin/env python3
"""relay benchmarks, each against a baseline measured in the same run.

  1. `relay req` latency vs `/bin/true` (both spawned the same way, so harness overhead cancels).
  2. `relay list` over 10,000 and 100,000 exchanges (half answered, each with a run record),
     table and --json, with peak memory: settled (the listing cache stands in for unchanged
     files and directories), and right after a change under `.relay/`.
  3. `relay call` overhead above an instant fake peer (the same fake peer run directly).
  4. From the deadline to the whole peer tree dead, with a grandchild holding the pipes.
  5. A hostile reply with 6,000 and 60,000 frontmatter keys, judged by `relay validate`.
  6. `relay fan` to 8 instant fake peers vs one `relay call` to one (on the bench's disk and on
     tmpfs), and relay's own peak memory as the number of peers grows (1, 2, 4, 8, 16).
  7. The Stop hook's decision (`relay hook stop`) in a project with 10,000 exchanges (half of
     them open, addressed to other agents) and a 10,000-line ledger, vs `/bin/true`.

  8. `relay board` over that project plus a 200-turn session with its record, vs `/bin/true`.

  9. `--verify-cmd true` over a plain call, against `sh -c true` run directly; and the
     workspace evidence of a call in a 10,000-file git repository, against one outside git.

Usage: bench/run [--quick] [--hook] [--verify]   (installs relay with ./install under target/bench
first; --hook: 7 and 8 only; --verify: 9 only)
"""
import json, os, shutil, statistics, subprocess, sys, tempfile, time

QUICK = "--quick" in sys.argv
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What bench/run installed with ./install: the binary a user gets.
RELAY = os.path.join(ROOT, "target", "bench", "bin", "relay")
FAKE = os.path.join(ROOT, "target", "bench", "bin", "relay-fake-peer")


def timed(argv, cwd, env, n):
    """Wall times (seconds) of n runs of argv, stdout discarded."""
    out = []
    for i in range(n):
        a = [x.replace("{i}", str(i)) for x in argv]
        t = time.perf_counter()
        subprocess.run(a, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
        out.append(time.perf_counter() - t)
    return out


def timed_rss(argv, cwd, env, n):
    """Wall times (seconds) of n runs of argv, and their peak resident set sizes (KiB) from n more
    runs under /usr/bin/time (a small parent: a child forked or vfork-spawned from this Python
    process would count Python's pages as its own until exec). No /usr/bin/time: sizes are 0."""
    times = timed(argv, cwd, env, n)
    rss = []
    if os.path.exists("/usr/bin/time"):
        for _ in range(n):
            out = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
            rss.append(int(out.stderr.strip().splitlines()[-1]))
    return times, rss or [0]


def make_tree(tmp, env, count):
    """A project with `count` one-shot exchanges cloned from one that `relay call` made with the
    fake peer (request, run record; every other one answered)."""
    big = os.path.join(tmp, f"big{count}")
    os.makedirs(os.path.join(big, ".git"))
    env_fixed = dict(env, RELAY_NOW="2026-11-21T16:30:00Z")
    subprocess.run([RELAY, "call", "--to", "fake", "--name", "tpl", "--peer-cmd", f"{FAKE} instant", "Review src/auth.py. Run pytest to verify."], cwd=big, env=env_fixed, check=True, stdout=subprocess.DEVNULL)
    rel = os.path.join(big, ".relay")
    stem = os.path.join(rel, "20261121-163000-tpl")
    tpl = {ext: open(stem + ext).read() for ext in (".req.md", ".res.md", ".run.json")}
    for f in os.listdir(rel):
        if f.startswith("20261121-163000-tpl") or f == "ledger.jsonl":
            os.remove(os.path.join(rel, f))
    for k in range(count):
        new_id = f"20261121-{k // 3600 % 24:02d}{k // 60 % 60:02d}{k % 60:02d}-ex{k}"
        for ext, text in tpl.items():
            if ext == ".res.md" and k % 2:
                continue
            text = text.replace("20261121-163000-tpl", new_id)
            if ext == ".run.json" and k % 2:
                text = text.replace('"outcome": "ok"', '"outcome": "timeout"')
            with open(os.path.join(rel, new_id + ext), "w") as f:
                f.write(text)
    return big


def fmt(xs):
    return f"median {statistics.median(xs)*1e3:7.2f} ms  p90 {sorted(xs)[int(len(xs)*0.9)]*1e3:7.2f} ms  (n={len(xs)})"


def verify_and_evidence(tmp, env, cfg, callp, m):
    """9. `--verify-cmd true` over the same call (vs `sh -c true` run directly), and the
    workspace evidence of a call in a git repository of 10,000 tracked files (vs the same call
    outside git)."""
    cenv = dict(env, RELAY_CONFIG=cfg)
    sh_t, plain_t, ver_t = [], [], []
    for round_ in range(5):
        sh_t += timed(["/bin/sh", "-c", "true"], callp, env, m // 5)
        plain_t += timed([RELAY, "call", "--to", "fake", "--name", f"p{round_}-{{i}}", "Do it."], callp, cenv, m // 5)
        ver_t += timed([RELAY, "call", "--to", "fake", "--verify-cmd", "true", "--name", f"v{round_}-{{i}}", "Do it."], callp, cenv, m // 5)
    over = statistics.median(ver_t) - statistics.median(plain_t) - statistics.median(sh_t)
    print(f"sh -c true           {fmt(sh_t)}")
    print(f"relay call --verify-cmd true {fmt(ver_t)}")
    print(f"--verify-cmd overhead {over*1e3:.2f} ms over running the check directly   (goal: <= 10 ms)")
    repo = os.path.join(tmp, "repo10k")
    os.makedirs(repo)
    genv = dict(env, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@x", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@x")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=genv)
    for d in range(100):
        os.makedirs(os.path.join(repo, f"d{d}"))
        for f in range(100):
            with open(os.path.join(repo, f"d{d}", f"f{f}.txt"), "w") as fh:
                fh.write(f"file {d}/{f}\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, env=genv)
    subprocess.run(["git", "commit", "-qm", "start"], cwd=repo, check=True, env=genv)
    nogit = os.path.join(tmp, "nogit")
    os.makedirs(nogit)
    n = 5 if QUICK else 20
    git_t, nogit_t = [], []
    for i in range(n):
        git_t += timed([RELAY, "call", "--to", "fake", "--name", f"g{i}", "Do it."], repo, cenv, 1)
        nogit_t += timed([RELAY, "call", "--to", "fake", "--name", f"n{i}", "Do it."], nogit, cenv, 1)
    print(f"relay call, no git   {fmt(nogit_t)}")
    print(f"relay call, 10k-file repo {fmt(git_t)}")
    print(f"evidence capture     {(statistics.median(git_t) - statistics.median(nogit_t))*1e3:.1f} ms (before and after, 10,000 tracked files; goal: <= 200 ms)")


def hook_and_board(tmp, env):
    # 7. the Stop hook: 10,000 `relay req` exchanges (every other one answered, the open ones
    # for codex), one open request for claude, a 10,000-line ledger.
    hookp = os.path.join(tmp, "hook")
    os.makedirs(os.path.join(hookp, ".git"))
    henv = dict(env, RELAY_NOW="2026-11-21T16:30:00Z")
    req = subprocess.run([RELAY, "req", "--from", "claude", "--to", "codex", "--name", "tpl", "Fix the token check."], cwd=hookp, env=henv, check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run([RELAY, "res", "--request", req, "--status", "done", "--verify", "skip", "Done."], cwd=hookp, env=henv, check=True, stdout=subprocess.DEVNULL)
    rel = os.path.join(hookp, ".relay")
    tpl = {ext: open(req.replace(".req.md", ext)).read() for ext in (".req.md", ".res.md")}
    for f in os.listdir(rel):
        os.remove(os.path.join(rel, f))
    for k in range(10_000):
        new_id = f"20261121-{k // 3600 % 24:02d}{k // 60 % 60:02d}{k % 60:02d}-ex{k}"
        for ext, text in tpl.items():
            if ext == ".res.md" and k % 2:
                continue
            with open(os.path.join(rel, new_id + ext), "w") as f:
                f.write(text.replace("20261121-163000-tpl", new_id))
    subprocess.run([RELAY, "req", "--from", "codex", "--to", "claude", "--name", "for-claude", "Answer me."], cwd=hookp, env=henv, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(rel, "ledger.jsonl"), "w") as f:
        for k in range(10_000):
            f.write(json.dumps({"v": 1, "id": f"20261121-163000-{k+1}", "type": "note", "time": "2026-11-21T16:30:00Z", "author": "claude", "text": f"note {k}"}) + "\n")
    def hook_once(session):
        t = time.perf_counter()
        out = subprocess.run([RELAY, "hook", "stop", "--agent", "claude"], cwd=hookp, env=env, input=json.dumps({"session_id": session, "stop_hook_active": False, "cwd": hookp}), capture_output=True, text=True, check=True)
        return time.perf_counter() - t, out.stdout
    hook_t, true_h, changed_t = [], [], []
    m = 20 if QUICK else 100
    # Right after a change under .relay/ the hook lists the directories again (a new request or
    # reply must count): a file is created before each of these runs.
    for i in range(m // 2):
        open(os.path.join(rel, f"touch-{i}.txt"), "w").close()
        dt, out = hook_once(f"c{i}")
        assert '"block"' in out, out
        changed_t.append(dt)
    # Settled (nothing changed for a second, as at most stops): the answer comes from the
    # stamped cache, no directory is listed.
    time.sleep(1.2)
    for i in range(m):
        dt, out = hook_once(f"s{i}")
        assert '"block"' in out, out
        hook_t.append(dt)
        true_h += timed(["/bin/true"], hookp, env, 1)
    print(f"/bin/true            {fmt(true_h)}")
    print(f"relay hook stop      {fmt(hook_t)}   (settled; 10,000 exchanges, 10,000-line ledger; goal: <= 15 ms)")
    print(f"relay hook stop      {fmt(changed_t)}   (a file created under .relay/ just before each run)")

    # 8. `relay board` over the same project (plus a 200-turn session with its record).
    sess = os.path.join(rel, "auth")
    os.makedirs(sess)
    for k in range(1, 201):
        for ext, text in tpl.items():
            if ext == ".res.md" and k == 200:
                continue
            body = text.replace("20261121-163000-tpl", f"{k:03d}").replace("/.relay/", "/.relay/auth/")
            with open(os.path.join(sess, f"{k:03d}{ext}"), "w") as f:
                f.write(body)
    with open(os.path.join(sess, "ledger.jsonl"), "w") as f:
        for k in range(1, 201):
            for kind, who, to in (("handoff", "claude", "codex"), ("reply", "codex", "claude")):
                f.write(json.dumps({"v": 1, "id": f"20261121-163000-{2*k+len(kind)}", "type": kind, "time": "2026-11-21T16:30:00Z", "author": who, "session": "auth", "re": f"auth/{k:03d}", "text": "x", "to": to}) + "\n")
    board_t, true_b = [], []
    for i in range(m):
        board_t += timed([RELAY, "board"], hookp, env, 1)
        true_b += timed(["/bin/true"], hookp, env, 1)
    print(f"/bin/true            {fmt(true_b)}")
    print(f"relay board          {fmt(board_t)}   (10,200 exchanges, 5,001 open; goal: <= 150 ms)")


def main():
    tmp = tempfile.mkdtemp(prefix="relay-bench-")
    if "--verify" in sys.argv:
        try:
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            cfg = os.path.join(tmp, "config.yaml")
            open(cfg, "w").write(f"peers:\n  fake:\n    command: [{FAKE}, instant]\n")
            callp = os.path.join(tmp, "call")
            os.makedirs(os.path.join(callp, ".git"))
            verify_and_evidence(tmp, env, cfg, callp, 20 if QUICK else 100)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    if "--hook" in sys.argv:
        try:
            hook_and_board(tmp, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    try:
        proj = os.path.join(tmp, "proj")
        os.makedirs(os.path.join(proj, ".git"))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        n = 50 if QUICK else 300
        # Interleave so machine noise hits both alike.
        true_t, req_t = [], []
        for round_ in range(5):
            true_t += timed(["/bin/true"], proj, env, n // 5)
            req_t += timed([RELAY, "req", "--from", "claude", "--to", "codex", "--name", f"bench-{round_}-{{i}}", "Review src/auth.py. Run pytest to verify."], proj, env, n // 5)
        ratio = statistics.median(req_t) / statistics.median(true_t)
        print(f"/bin/true            {fmt(true_t)}")
        print(f"relay req            {fmt(req_t)}")
        print(f"relay req / true     {ratio:.2f}x   (goal: <= 2x)")

        # 3. call overhead: a config-file peer that execs the fake peer directly (no shell).
        callp = os.path.join(tmp, "call")
        os.makedirs(os.path.join(callp, ".git"))
        cfg = os.path.join(tmp, "config.yaml")
        open(cfg, "w").write(f"peers:\n  fake:\n    command: [{FAKE}, instant]\n")
        cenv = dict(env, RELAY_CONFIG=cfg)
        direct_t, call_t = [], []
        m = 20 if QUICK else 100
        os.makedirs(os.path.join(callp, "direct"))
        for round_ in range(5):
            for i in range(m // 5):
                denv = dict(env, RELAY_REQUEST=os.path.join(callp, "direct", f"d{round_}-{i}.req.md"), RELAY_REPLY=os.path.join(callp, "direct", f"d{round_}-{i}.res.md"))
                t = time.perf_counter()
                subprocess.run([FAKE, "instant"], cwd=callp, env=denv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
                direct_t.append(time.perf_counter() - t)
            call_t += timed([RELAY, "call", "--to", "fake", "--name", f"c{round_}-{{i}}", "Do it."], callp, cenv, m // 5)
        over = statistics.median(call_t) - statistics.median(direct_t)
        print(f"fake peer, direct    {fmt(direct_t)}")
        print(f"relay call + fake    {fmt(call_t)}")
        print(f"relay call overhead  {over*1e3:.2f} ms median   (goal: <= 10 ms over the fake peer)")
        verify_and_evidence(tmp, env, cfg, callp, m)

        # 4. deadline -> tree dead: the fake peer hangs with a grandchild holding stdout/stderr.
        kenv = dict(env, RELAY_CONFIG=os.path.join(tmp, "hang.yaml"))
        open(kenv["RELAY_CONFIG"], "w").write(f"peers:\n  fake:\n    command: [{FAKE}, hang]\n  stubborn:\n    command: [{FAKE}, ignore-term]\n")
        import json
        for peer, label in (("fake", "hang + grandchild"), ("stubborn", "ignores SIGTERM")):
            after, kills = [], []
            for i in range(3 if QUICK else 8):
                t = time.perf_counter()
                r = subprocess.run([RELAY, "call", "--to", peer, "--name", f"k-{peer}-{i}", "--timeout", "1", "--json", "Hang."], cwd=callp, env=kenv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
                wall = time.perf_counter() - t
                assert r.returncode == 124, (r.returncode, r.stderr)
                rec = json.loads(r.stdout)
                kills.append(rec["kill_ms"] / 1e3)
                # From the 1 s deadline to relay's exit (tree dead, record written).
                after.append(wall - 1.0)
            print(f"kill, {label:<17} deadline->tree dead {statistics.median(kills)*1e3:6.0f} ms median, deadline->relay exit {statistics.median(after)*1e3:6.0f} ms median (n={len(kills)}; goal <= 1500 ms)")

        # 5. A hostile reply: 6,000 and 60,000 frontmatter keys (flat, and YAML-only values),
        # judged by `relay validate`; the baseline is the same command on a 7-key reply.
        hostile = os.path.join(tmp, "hostile")
        os.makedirs(os.path.join(hostile, ".git"))
        def reply(name, n, value):
            keys = "".join(f"k{i}: {value}\n" for i in range(n))
            path = os.path.join(hostile, f"{name}.res.md")
            open(path, "w").write(f"---\nrelay: 6\nre: {name}\nfrom: a\nto: b\nstatus: done\nverify: pass\n{keys}---\n\nbody\n")
            return path
        small = reply("small", 0, "")
        m = 10 if QUICK else 40
        base = timed([RELAY, "validate", small], hostile, env, m)
        print(f"relay validate, 7 keys {fmt(base)}")
        for n in (6_000, 60_000):
            for label, value in (("flat", "v"), ("yaml", "[v, w]")):
                path = reply(f"k{n}-{label}", n, value)
                ts = []
                for _ in range(m):
                    t0 = time.perf_counter()
                    subprocess.run([RELAY, "validate", path], cwd=hostile, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
                    ts.append(time.perf_counter() - t0)
                extra = (statistics.median(ts) - statistics.median(base)) * 1e3
                print(f"reply with {n:>6,} keys ({label}) judged in {statistics.median(ts)*1e3:6.2f} ms median, {extra:+6.2f} ms over 7 keys (goal: < 50 ms, linear)")

        # 6. fan-out: 8 instant fake peers at once vs one call to one (same mode, same machine),
        # in a project on the bench's disk and, where there is one, on tmpfs: every call creates
        # files in one `.relay/` directory, and on a disk that recently deleted many files (this
        # bench does, at its end) creating them costs more than relay's own work.
        fcfg = os.path.join(tmp, "fan.yaml")
        open(fcfg, "w").write("peers:\n" + "".join(f"  f{k}:\n    command: [{FAKE}, instant]\n" for k in range(16)))
        fenv = dict(env, RELAY_CONFIG=fcfg)
        m = 10 if QUICK else 40
        eight = ",".join(f"f{k}" for k in range(8))
        shm = tempfile.mkdtemp(prefix="relay-bench-", dir="/dev/shm") if os.path.isdir("/dev/shm") else None
        try:
            for where, base in (("disk", tmp), ("tmpfs", shm)):
                if base is None:
                    continue
                fanp = os.path.join(base, "fan")
                os.makedirs(os.path.join(fanp, ".git"))
                one_t, fan_t = [], []
                for round_ in range(5):
                    one_t += timed([RELAY, "call", "--to", "f0", "--mode", "write", "--name", f"o{round_}-{{i}}", "Do it."], fanp, fenv, m // 5)
                    fan_t += timed([RELAY, "fan", "--to", eight, "--mode", "write", "--name", f"n{round_}-{{i}}", "Do it."], fanp, fenv, m // 5)
                print(f"relay call, 1 peer   {fmt(one_t)}   ({where})")
                print(f"relay fan, 8 peers   {fmt(fan_t)}   ({where})")
                print(f"fan 8 / call 1       {statistics.median(fan_t)/statistics.median(one_t):.2f}x   ({where}; goal: <= 1.5x)")
        finally:
            if shm:
                shutil.rmtree(shm, ignore_errors=True)
        fanp = os.path.join(tmp, "fan")
        for n in (1, 2, 4, 8, 16):
            peers = ",".join(f"f{k}" for k in range(n))
            _, rss = timed_rss([RELAY, "fan", "--to", peers, "--mode", "write", "--name", f"m{n}", "Do it."], fanp, fenv, 1)
            print(f"relay fan, {n:>2} peers: relay's peak RSS {rss[0]/1024:5.1f} MB")

        # 2 (run last: deleting its 250,000 files leaves ext4 slower to create files for a while,
        # which would be charged to the calls). `relay list` over 10,000 and 100,000 exchanges, each with the run record of the call
        # that made it (list reads them), half answered; time and peak memory.
        runs = 5 if QUICK else 15
        for count, goal_ms in ((10_000, 150), (100_000, 500)):
            big = make_tree(tmp, env, count)
            # Warm the page cache; the listing cache records only what is two seconds old.
            timed([RELAY, "list"], big, env, 1)
            time.sleep(2.1)
            timed([RELAY, "list"], big, env, 1)
            n_runs = runs if count <= 10_000 else max(3, runs // 3)
            list_t, rss = timed_rss([RELAY, "list"], big, env, n_runs)
            json_t, json_rss = timed_rss([RELAY, "list", "--json"], big, env, n_runs)
            lines = subprocess.run([RELAY, "list"], cwd=big, env=env, capture_output=True, text=True, check=True).stdout.count("\n") - 1
            assert lines == count, f"relay list showed {lines} rows, wanted {count}"
            # Right after a change under .relay/ (a new file each run): the directory is listed
            # again, and each file's identity checked against the cache.
            changed_t = []
            for i in range(n_runs):
                open(os.path.join(big, ".relay", f"touch-{i}.txt"), "w").close()
                changed_t += timed([RELAY, "list"], big, env, 1)
            print(f"relay list ({count:,}) {fmt(list_t)}  max RSS {max(rss)/1024:5.1f} MB   (settled; goal: < {goal_ms} ms, <= 64 MB)")
            print(f"relay list ({count:,}) {fmt(changed_t)}   (a file created under .relay/ just before each run)")
            print(f"relay list --json    {fmt(json_t)}  max RSS {max(json_rss)/1024:5.1f} MB")
            print(f"baseline in this run: /bin/true median {statistics.median(true_t)*1e3:.2f} ms; list = {statistics.median(list_t)/statistics.median(true_t):.0f}x one process start")
            if count == 10_000:
                valid = subprocess.run([RELAY, "validate"], cwd=big, env=env, capture_output=True, text=True)
                assert valid.returncode == 0, valid.stdout[:500]
            shutil.rmtree(big, ignore_errors=True)

        hook_and_board(tmp, env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
