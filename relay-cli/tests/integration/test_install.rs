//! README's install command (`./install`): which cargo install it runs, decided by the host and
//! the static C library. `rustc`, `cc` and `cargo` are stand-ins on PATH that say what they were
//! asked (the real build is CI's `./install` step and `bench/run`).
#![cfg(unix)]

use crate::common::sh_script as shim;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Shims {
    _tmp: tempfile::TempDir,
    bin: PathBuf,
    libc_a: PathBuf,
}

impl Shims {
    /// A host triple for `rustc -vV`, and a `cargo` that prints its arguments and RUSTFLAGS
    /// and exits with `cargo_status`.
    fn new(host: &str, cargo_status: i32) -> Shims {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let libc_a = tmp.path().join("libc.a");
        shim(
            &bin,
            "rustc",
            &format!("printf 'rustc 1.95.0\\nhost: {host}\\n'"),
        );
        shim(
            &bin,
            "cargo",
            &format!("echo \"cargo $* RUSTFLAGS=${{RUSTFLAGS-unset}}\"; exit {cargo_status}"),
        );
        // `cc -print-file-name=libc.a` prints the full path when it finds the file, else the
        // bare name: like gcc and clang.
        let found = libc_a.display();
        shim(
            &bin,
            "cc",
            &format!("if [ -f '{found}' ]; then echo '{found}'; else echo libc.a; fi"),
        );
        Shims {
            _tmp: tmp,
            bin,
            libc_a,
        }
    }

    fn with_libc_a(self) -> Shims {
        std::fs::write(&self.libc_a, b"!<arch>\n").unwrap();
        self
    }

    fn install(&self, args: &[&str], rustflags: Option<&str>) -> Output {
        let script = repo_root().join("install");
        let mut cmd = Command::new("/bin/sh");
        cmd.arg(&script)
            .args(args)
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin.display()));
        if let Some(flags) = rustflags {
            cmd.env("RUSTFLAGS", flags);
        }
        cmd.output().unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The repository root as the script names it (`pwd -P` of its own directory).
fn repo_root() -> PathBuf {
    std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).unwrap()
}

#[test]
fn linux_gnu_with_libc_a_installs_a_static_pie_relay_for_the_host() {
    let shims = Shims::new("x86_64-unknown-linux-gnu", 0).with_libc_a();
    let out = shims.install(&["--root", "/opt/relay"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let root = repo_root();
    assert_eq!(
        text(&out.stdout),
        format!(
            "cargo install --locked --path {}/relay-cli --target x86_64-unknown-linux-gnu \
             --root /opt/relay RUSTFLAGS=-C target-feature=+crt-static\n",
            root.display()
        )
    );
    assert_eq!(text(&out.stderr), "");

    // The user's own RUSTFLAGS are kept, crt-static added after them.
    let out = shims.install(&[], Some("-C target-cpu=native"));
    assert!(
        text(&out.stdout)
            .ends_with("RUSTFLAGS=-C target-cpu=native -C target-feature=+crt-static\n"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn without_libc_a_or_off_glibc_the_install_is_the_plain_one() {
    let root = repo_root();
    let plain = format!(
        "cargo install --locked --path {}/relay-cli --force RUSTFLAGS=unset\n",
        root.display()
    );

    let no_libc_a = Shims::new("x86_64-unknown-linux-gnu", 0);
    let out = no_libc_a.install(&["--force"], None);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), plain);
    assert_eq!(
        text(&out.stderr),
        "relay install: no static C library (libc.a) for x86_64-unknown-linux-gnu; installing a \
         dynamically linked relay\n"
    );

    for host in ["aarch64-apple-darwin", "x86_64-unknown-linux-musl"] {
        let out = Shims::new(host, 0)
            .with_libc_a()
            .install(&["--force"], None);
        assert!(out.status.success(), "{host}");
        assert_eq!(text(&out.stdout), plain, "{host}");
        assert_eq!(text(&out.stderr), "", "{host}");
    }
}

#[test]
fn a_failed_static_build_exits_with_cargos_status_and_names_the_plain_install() {
    let out = Shims::new("aarch64-unknown-linux-gnu", 101)
        .with_libc_a()
        .install(&[], None);
    assert_eq!(out.status.code(), Some(101));
    assert!(text(&out.stdout).contains("--target aarch64-unknown-linux-gnu"));
    assert_eq!(
        text(&out.stderr),
        "relay install: the static build failed (above); `cargo install --locked --path \
         relay-cli` installs a dynamically linked relay\n"
    );
}
