//! Many processes at once: session turns and same-second ids never collide or get lost.

use std::process::Child;

use crate::common::TestEnv;

fn spawn_all(env: &TestEnv, n: usize, args: impl Fn(usize) -> Vec<String>) -> Vec<String> {
    let children: Vec<Child> = (0..n)
        .map(|i| {
            let a = args(i);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            env.cmd(&a)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", env.render(&out));
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        })
        .collect()
}

#[test]
fn sixteen_processes_append_turns_to_one_session() {
    let env = TestEnv::new();
    // Two rounds: one into a fresh session (directory creation races too), one continuing it.
    for round in 0..2 {
        let paths = spawn_all(&env, 16, |i| {
            [
                "req",
                "--from",
                "claude",
                "--to",
                "codex",
                "--session",
                "busy",
                &format!("round {round} writer {i}"),
            ]
            .map(str::to_owned)
            .to_vec()
        });
        let mut unique = paths.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 16, "duplicated turn paths: {paths:?}");
    }
    let turns = relay_core::session_turns(&env.relay_dir().join("busy")).unwrap();
    let numbers: Vec<u64> = turns.iter().map(|t| t.number).collect();
    assert_eq!(
        numbers,
        (1..=32).collect::<Vec<_>>(),
        "no lost or duplicated turn"
    );
    // Every writer's body landed in exactly one turn, and each file is valid.
    let mut bodies = Vec::new();
    for t in &turns {
        let path = env
            .relay_dir()
            .join("busy")
            .join(format!("{}.req.md", t.stem));
        let text = std::fs::read_to_string(&path).unwrap();
        let relay_core::Message::Request(r) =
            relay_core::parse(&path, &text).into_result().unwrap()
        else {
            panic!()
        };
        assert_eq!(r.id, t.stem);
        bodies.push(r.body);
    }
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 32);
}

#[test]
fn sixteen_processes_same_name_same_second() {
    let env = TestEnv::new();
    let paths = spawn_all(&env, 16, |i| {
        [
            "req",
            "--from",
            "a",
            "--to",
            "b",
            "--name",
            "race",
            &format!("writer {i}"),
        ]
        .map(str::to_owned)
        .to_vec()
    });
    let mut unique = paths.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 16, "{paths:?}");
    for p in &paths {
        let text = std::fs::read_to_string(p).unwrap();
        assert!(
            !relay_core::parse(std::path::Path::new(p), &text).has_errors(),
            "{p}"
        );
    }
}
