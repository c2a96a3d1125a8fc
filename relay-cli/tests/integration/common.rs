//! A hermetic environment for running `relay`: a temp project with a `.git` marker, a cleared
//! environment, a fixed clock, and output normalized for snapshots.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The clock every test runs at (RELAY_NOW).
pub const NOW: &str = "2026-11-21T16:30:00Z";

pub struct TestEnv {
    _tmp: tempfile::TempDir,
    /// The project root (holds `.git/`).
    pub root: PathBuf,
    /// Where relay runs.
    pub cwd: PathBuf,
    pub now: String,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let tmp = tempfile::Builder::new()
            .prefix("relay-test-")
            .tempdir()
            .unwrap();
        // Canonical, so the paths relay prints (canonicalized) match ours.
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        let root = base.join("repo");
        std::fs::create_dir_all(root.join(".git")).unwrap();
        TestEnv {
            _tmp: tmp,
            cwd: root.clone(),
            root,
            now: NOW.to_owned(),
        }
    }

    pub fn relay_dir(&self) -> PathBuf {
        self.root.join(".relay")
    }

    /// A `relay` command with a cleared environment, ready to run in `cwd`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_relay"));
        cmd.args(args)
            .current_dir(&self.cwd)
            .env_clear()
            .env("HOME", self.root.parent().unwrap())
            .env("RELAY_NOW", &self.now)
            // `--peer-cmd` runs through sh; nothing else from the host's PATH is needed.
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs with `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write as _;
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs and expects success; returns trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "relay {args:?} failed:\n{}",
            self.render(&out)
        );
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
    }

    /// stdout, stderr and exit status as one normalized text for snapshots.
    pub fn render(&self, out: &Output) -> String {
        let mut s = self.normalize(&String::from_utf8_lossy(&out.stdout));
        let err = self.normalize(&String::from_utf8_lossy(&out.stderr));
        if !err.is_empty() {
            s.push_str("------- stderr -------\n");
            s.push_str(&err);
        }
        match out.status.code() {
            Some(0) => {}
            Some(c) => s.push_str(&format!("[exit status: {c}]\n")),
            None => s.push_str("[killed by a signal]\n"),
        }
        s
    }

    pub fn normalize(&self, s: &str) -> String {
        s.replace(self.root.to_str().unwrap(), "$ROOT")
            .replace(self.root.parent().unwrap().to_str().unwrap(), "$HOME")
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel)).unwrap()
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Makes the project a real git repository with `files` committed (the marker `.git/` is
    /// replaced). Git runs with a cleared environment like relay does.
    pub fn git_init(&self, files: &[(&str, &str)]) {
        std::fs::remove_dir_all(self.root.join(".git")).unwrap();
        for (path, text) in files {
            self.write(path, text);
        }
        self.git(&["init", "-q", "-b", "main"]);
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", "start"]);
    }

    /// Runs git in the project; panics if it fails. Returns stdout.
    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(&self.root)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.root.parent().unwrap())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .env("GIT_AUTHOR_DATE", "2026-11-21T16:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-11-21T16:00:00Z")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// All files under `.relay/`, relative, sorted (what a test expects to exist).
    pub fn relay_files(&self) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for e in rd {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.relay_dir(), &self.relay_dir(), &mut out);
        out.sort();
        out
    }
}

/// The exit code, which must exist.
pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

/// The fake peer binary (relay-cli/testing/fake_peer.rs).
pub const FAKE_PEER: &str = env!("CARGO_BIN_EXE_relay-fake-peer");

/// Is a process still running? (Gone, or a zombie nobody reaped yet, counts as dead.)
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .is_some_and(|i| !stat[i + 2..].starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Replaces the wall-clock parts of `relay call` output (they vary run to run).
pub fn no_times(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("time=") {
        out.push_str(&rest[..i + 5]);
        let after = &rest[i + 5..];
        let end = after.find('s').map_or(0, |e| e + 1);
        out.push_str("[T]");
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// An executable `#!/bin/sh` script `dir/name` running `body`: a stand-in for a program on PATH.
#[cfg(unix)]
pub fn sh_script(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
