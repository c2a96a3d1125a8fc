//! A fake peer for relay's tests: behaves like a peer CLI in one of several ways, fast and
//! deterministic. relay runs it through `--peer-cmd`, so it finds the request and reply paths
//! in `RELAY_REQUEST` / `RELAY_REPLY`.
//!
//! Usage: relay-fake-peer MODE. Every process it starts appends its pid to `$FAKE_PEER_PIDS`
//! (when set), so a test can check that none survives.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The reply; its body is `$FAKE_PEER_BODY` (`{peer}` replaced by `$RELAY_PEER`) when set.
fn reply_text(re: &str, status: &str, verify: &str) -> String {
    let body = match std::env::var("FAKE_PEER_BODY") {
        Ok(b) => b.replace("{peer}", &std::env::var("RELAY_PEER").unwrap_or_default()),
        Err(_) => format!("Fake peer answer for {re}."),
    };
    format!(
        "---\nrelay: 6\nre: \"{re}\"\nfrom: fake\nto: user\nstatus: {status}\nverify: {verify}\n---\n\n{body}\n"
    )
}

fn record_pid() {
    if let Ok(path) = std::env::var("FAKE_PEER_PIDS") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("pid file");
        writeln!(f, "{}", std::process::id()).expect("write pid");
    }
}

#[cfg(unix)]
fn link(target: &str, at: &str) {
    std::os::unix::fs::symlink(target, at).expect("symlink");
}

#[cfg(not(unix))]
fn link(_target: &str, _at: &str) {
    panic!("symlinks are Unix-only here");
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Starts this program again in `mode` (a grandchild of relay), inheriting stdout and stderr.
/// Never waited for on purpose: it is the process that outlives its parent.
#[allow(clippy::zombie_processes)]
fn spawn_self(mode: &str, own_group: bool) {
    let mut cmd = Command::new(std::env::current_exe().expect("own path"));
    cmd.arg(mode).stdin(Stdio::null());
    #[cfg(unix)]
    if own_group {
        use std::os::unix::process::CommandExt as _;
        cmd.process_group(0);
    }
    let _ = own_group;
    cmd.spawn().expect("spawn grandchild");
}

fn main() {
    record_pid();
    let mode = std::env::args().nth(1).unwrap_or_else(|| "instant".into());
    let reply = std::env::var("RELAY_REPLY").unwrap_or_default();
    let request = std::env::var("RELAY_REQUEST").unwrap_or_default();
    let re = Path::new(&request)
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".req.md"))
        .unwrap_or("unknown")
        .to_owned();
    let status = std::env::var("FAKE_PEER_STATUS").unwrap_or_else(|_| "done".into());
    let verify = std::env::var("FAKE_PEER_VERIFY").unwrap_or_else(|_| "pass".into());
    let write = |text: &str| std::fs::write(&reply, text).expect("write reply");
    match mode.as_str() {
        "instant" => write(&reply_text(&re, &status, &verify)),
        "slow" => {
            println!("working");
            sleep_ms(
                std::env::var("FAKE_PEER_DELAY_MS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1500),
            );
            write(&reply_text(&re, &status, &verify));
        }
        // A grandchild holds stdout and stderr open forever; the peer itself hangs too.
        "hang" => {
            spawn_self("sleep-forever", false);
            println!("hanging");
            sleep_ms(3_600_000);
        }
        // Like hang, but the grandchild left the process group (setsid-style), as node's
        // `detached` children do.
        "hang-escaped" => {
            spawn_self("sleep-forever", true);
            sleep_ms(3_600_000);
        }
        "sleep-forever" => sleep_ms(3_600_000),
        // Ignores SIGTERM: only SIGKILL ends it (gemini's parent process does this).
        "ignore-term" => {
            spawn_self("sleep-forever", false);
            #[cfg(unix)]
            ignore_sigterm();
            sleep_ms(3_600_000);
        }
        "crash" => {
            eprintln!("fake peer: something broke");
            std::process::exit(3);
        }
        "garbage" => write("this is not a relay reply\n"),
        "stdout-only" => println!("I did the task but only printed the answer here."),
        // Hostile or broken peers: what they leave at the reply path is not a file.
        "dir-reply" => std::fs::create_dir_all(&reply).expect("mkdir"),
        "link-reply" => {
            let outside = std::env::var("FAKE_PEER_TARGET").expect("FAKE_PEER_TARGET");
            std::fs::write(&outside, reply_text(&re, &status, &verify)).expect("write target");
            link(&outside, &reply);
        }
        "dangling-reply" => link("/nonexistent/relay-fake-peer", &reply),
        "fifo-reply" => {
            let made = Command::new("mkfifo").arg(&reply).status().expect("mkfifo");
            assert!(made.success(), "mkfifo failed");
        }
        "nul-final" => println!("An answer with a NUL \0 byte in it."),
        // Answers, then fills the disk the project is on (a test mounts a small tmpfs).
        "fill-disk" => {
            println!("I filled the disk, then answered here.");
            let _ = std::io::stdout().flush();
            let mut f = std::fs::File::create(format!("{request}.fill")).expect("fill file");
            let chunk = vec![0u8; 64 * 1024];
            while f.write_all(&chunk).is_ok() {}
            let _ = f.write_all(&[0u8; 512]);
            let _ = f.write_all(&[0u8; 1]);
        }
        "delete-request" => {
            std::fs::remove_file(&request).expect("remove request");
            println!("I removed the request, then answered here.");
        }
        "partial" => {
            let full = reply_text(&re, &status, &verify);
            write(&full[..full.len() / 3]);
        }
        "wrong-id" => write(&reply_text(
            "20200101-000000-someone-else",
            &status,
            &verify,
        )),
        // Exits at once; a background grandchild writes the reply a little later.
        "late" => spawn_self("late-writer", false),
        "late-writer" => {
            sleep_ms(500);
            write(&reply_text(&re, &status, &verify));
        }
        // Read-only peers answer with the whole reply as their final message.
        "final-reply" => print!("{}", reply_text(&re, &status, &verify)),
        // Does what the request's footer asks: the final message in a read-only call, else the
        // file. Slow enough (FAKE_PEER_DELAY_MS) to be seen running, if asked.
        "auto" => {
            if let Some(ms) = std::env::var("FAKE_PEER_DELAY_MS")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                sleep_ms(ms);
            }
            let text = std::fs::read_to_string(&request).expect("read request");
            if text.contains("as your final message") {
                print!("{}", reply_text(&re, &status, &verify));
            } else {
                write(&reply_text(&re, &status, &verify));
            }
        }
        // A peer that gets the request on stdin (like Gemini CLI): answers with what it got.
        "stdin-echo" => {
            let mut got = String::new();
            let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut got);
            let body = format!("Got on stdin:\n\n{got}");
            let reply = reply_text(&re, &status, &verify);
            print!(
                "{}",
                reply.replace(&format!("Fake peer answer for {re}."), &body)
            );
        }
        // A read-only peer that edits the project anyway, then answers as asked.
        "write-outside" => {
            let target = std::env::var("FAKE_PEER_TARGET").expect("FAKE_PEER_TARGET");
            // Later, when asked: the other peers of a fan-out have taken their "before" by then.
            if let Some(ms) = std::env::var("FAKE_PEER_DELAY_MS")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                sleep_ms(ms);
            }
            std::fs::write(&target, "changed by the peer\n").expect("write target");
            print!("{}", reply_text(&re, &status, &verify));
        }
        // Calls relay again (recursion guard tests): RELAY_FAKE_INNER is the inner command.
        "recurse" => {
            let inner = std::env::var("FAKE_PEER_INNER").expect("FAKE_PEER_INNER");
            let out = Command::new("sh")
                .arg("-c")
                .arg(inner)
                .output()
                .expect("inner");
            let code = out.status.code().unwrap_or(-1);
            let body = format!(
                "inner exit {code}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            write(
                &reply_text(&re, "done", "skip")
                    .replace(&format!("Fake peer answer for {re}."), &body),
            );
        }
        other => {
            eprintln!("fake peer: unknown mode {other}");
            std::process::exit(2);
        }
    }
}

#[cfg(unix)]
fn ignore_sigterm() {
    // Register a handler that does nothing: the process keeps running on SIGTERM.
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, flag).expect("handler");
}
