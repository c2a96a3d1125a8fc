//! The shape of every `--json` output (keys, nesting and value types, not values) is part of
//! relay's interface for scripts and agents: snapshotted here, so a change to it is a
//! visible, reviewed change.

use crate::common::{FAKE_PEER, TestEnv};
use insta::assert_snapshot;

/// `{"a": 1, "b": [{"c": "x"}]}` -> `a: number` / `b: [ {c: string} ]`, one key per line,
/// sorted, so the snapshot shows structure only.
fn shape(v: &serde_json::Value, indent: usize, out: &mut String) {
    use serde_json::Value as V;
    let pad = "  ".repeat(indent);
    match v {
        V::Object(map) => {
            let mut keys: Vec<_> = map.keys().collect();
            keys.sort();
            for k in keys {
                let inner = &map[k];
                match inner {
                    V::Object(_) => {
                        out.push_str(&format!("{pad}{k}: {{\n"));
                        shape(inner, indent + 1, out);
                        out.push_str(&format!("{pad}}}\n"));
                    }
                    V::Array(items) => match items.first() {
                        Some(first @ V::Object(_)) => {
                            out.push_str(&format!("{pad}{k}: [{{\n"));
                            shape(first, indent + 1, out);
                            out.push_str(&format!("{pad}}}]\n"));
                        }
                        Some(first) => out.push_str(&format!("{pad}{k}: [{}]\n", kind(first))),
                        None => out.push_str(&format!("{pad}{k}: []\n")),
                    },
                    other => out.push_str(&format!("{pad}{k}: {}\n", kind(other))),
                }
            }
        }
        V::Array(items) => {
            out.push_str(&format!("{pad}[\n"));
            if let Some(first) = items.first() {
                shape(first, indent + 1, out);
            }
            out.push_str(&format!("{pad}]\n"));
        }
        other => out.push_str(&format!("{pad}{}\n", kind(other))),
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

fn json_shape(env: &TestEnv, args: &[&str]) -> String {
    let out = env.cmd(args).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut s = String::new();
    shape(&v, 0, &mut s);
    s
}

#[test]
fn every_json_output_has_a_reviewed_shape() {
    let env = TestEnv::new();
    let peer = format!("{FAKE_PEER} instant");
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "req",
            vec!["req", "--to", "b", "--name", "manual", "--json", "t"],
        ),
        (
            "res",
            vec![
                "res",
                "--request",
                "manual",
                "--status",
                "done",
                "--verify",
                "pass",
                "--json",
                "ok",
            ],
        ),
        (
            "call",
            vec![
                "call",
                "--to",
                "fake",
                "--name",
                "c",
                "--peer-cmd",
                &peer,
                "--json",
                "t",
            ],
        ),
        ("wait", vec!["wait", "c", "--json"]),
        ("status", vec!["status", "--json"]),
        ("status-one", vec!["status", "c", "--json"]),
        ("list", vec!["list", "--json"]),
        ("show", vec!["show", "c", "--json"]),
        ("validate", vec!["validate", "--json"]),
        ("clean", vec!["clean", "--dry-run", "--json"]),
        ("doctor", vec!["doctor", "--no-probe", "--json"]),
        ("skill-status", vec!["skill", "status", "--json"]),
    ];
    for (name, args) in cases {
        assert_snapshot!(format!("json-{name}"), json_shape(&env, &args));
    }
}
