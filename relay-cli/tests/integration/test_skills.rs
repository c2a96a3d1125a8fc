//! The skills: valid per the Agent Skills spec and within budget, embedded unchanged in the
//! binary, every shell command they show runs, and `relay skill` installs, reports and removes
//! them in a temp HOME.

use std::path::{Path, PathBuf};

use crate::common::{FAKE_PEER, TestEnv, code};
use insta::assert_snapshot;

pub const AGENTS: [&str; 3] = ["claude", "codex", "gemini"];

pub fn skill_path(agent: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../skills/{agent}/relay/SKILL.md"))
}

/// (frontmatter as YAML, body)
fn split(text: &str) -> (yaml_serde::Value, &str) {
    let rest = text
        .strip_prefix("---\n")
        .expect("SKILL.md starts with ---");
    let end = rest.find("\n---\n").expect("frontmatter closes");
    (
        yaml_serde::from_str(&rest[..end]).expect("frontmatter is YAML"),
        &rest[end + 5..],
    )
}

/// The shell commands a SKILL.md shows: every line of its ```sh blocks.
pub fn commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in text.lines() {
        match (in_sh, line.trim_end()) {
            (false, "```sh") => in_sh = true,
            (true, "```") => in_sh = false,
            (true, l) if !l.trim().is_empty() => out.push(l.to_owned()),
            _ => {}
        }
    }
    out
}

#[test]
fn frontmatter_follows_the_agent_skills_spec_and_the_budget() {
    for agent in AGENTS {
        let path = skill_path(agent);
        let text = std::fs::read_to_string(&path).unwrap();
        let (fm, body) = split(&text);
        let dir = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        let name = fm["name"].as_str().unwrap();
        assert_eq!(name, dir, "{agent}: name must match the directory");
        assert!(
            relay_core::fields::is_slug(name),
            "{agent}: name must be [a-z0-9-], at most 64"
        );
        let description = fm["description"].as_str().unwrap();
        assert!(
            (1..=300).contains(&description.chars().count()),
            "{agent}: description is {} characters",
            description.chars().count()
        );
        for trigger in ["second opinion", "review", "delegate"] {
            assert!(
                description.contains(trigger),
                "{agent}: description lacks the trigger `{trigger}`"
            );
        }
        // The spec's keys, plus Claude Code's own; nothing misspelt (v4 once wrote user_invocable).
        let allowed = [
            "name",
            "description",
            "license",
            "compatibility",
            "metadata",
            "allowed-tools",
            "user-invocable",
            "argument-hint",
        ];
        for key in fm.as_mapping().unwrap().keys() {
            assert!(
                allowed.contains(&key.as_str().unwrap()),
                "{agent}: unexpected key {key:?}"
            );
        }
        assert_eq!(
            fm["metadata"]["installed-by"], "relay",
            "{agent}: relay's marker"
        );
        // About 1,500 tokens at most (4 characters a token).
        assert!(body.len() <= 6000, "{agent}: body is {} bytes", body.len());
        assert!(!commands(&text).is_empty());
    }
    let (claude, _) = split(&std::fs::read_to_string(skill_path("claude")).unwrap());
    assert!(
        claude["allowed-tools"]
            .as_str()
            .unwrap()
            .split(", ")
            .any(|t| t == "Bash(relay:*)")
    );
    assert_eq!(claude["user-invocable"], true);
}

#[test]
fn the_binary_carries_the_skills_unchanged() {
    let env = TestEnv::new();
    for agent in AGENTS {
        let out = env.run(&["skill", "show", agent]);
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            std::fs::read_to_string(skill_path(agent)).unwrap(),
            "{agent}"
        );
    }
}

/// A config that makes codex, claude and gemini the fake peer, so the skills' commands run as
/// written.
/// One reply body that answers every command the skills show: a sound review (one JSON block,
/// no finding) and a full deliberation, around a plain answer.
pub fn any_command_body() -> String {
    let review = "```json\n{\"findings\": [], \"overall_correctness\": \"patch is correct\", \"overall_explanation\": \"Sound.\"}\n```";
    let sections: String = relay_core::review::DELIBERATION_SECTIONS
        .iter()
        .map(|h| format!("## {h}\n\nText.\n\n"))
        .collect();
    format!("Done.\n\n{review}\n\n{sections}")
}

/// Makes the project a repository with a change on a branch off `main`, for the skills'
/// review examples.
pub fn repo_with_a_change(git: impl Fn(&[&str]), write: impl Fn(&str, &str)) {
    write(
        "src/auth.py",
        "def check(token):\n    return token == SECRET\n",
    );
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-qm",
            "start",
        ],
        &["checkout", "-q", "-b", "feature"],
    ] {
        git(args);
    }
    write(
        "src/auth.py",
        "def check(token):\n    return hmac.compare_digest(token, SECRET)\n",
    );
}

pub fn fake_peers_config(dir: &Path) -> PathBuf {
    let cfg = dir.join("fake-peers.yaml");
    let body = serde_json::to_string(&any_command_body()).unwrap();
    let peers: String = AGENTS
        .iter()
        .map(|a| {
            format!(
                "  {a}:\n    command: [{FAKE_PEER}, auto]\n    env:\n      FAKE_PEER_BODY: {body}\n"
            )
        })
        .collect();
    std::fs::write(&cfg, format!("peers:\n{peers}")).unwrap();
    cfg
}

/// Every command a SKILL.md shows runs, in order, in one repo, and succeeds.
#[test]
fn every_command_in_every_skill_runs_against_the_fake_peer() {
    for agent in AGENTS {
        let env = TestEnv::new();
        std::fs::remove_dir_all(env.root.join(".git")).unwrap();
        repo_with_a_change(
            |args| {
                env.git(args);
            },
            |path, text| env.write(path, text),
        );
        let cfg = fake_peers_config(env.root.parent().unwrap());
        // `$REQ` in the "when you are the peer" part: a request waiting for its reply.
        let req = env.ok(&[
            "req",
            "--from",
            "someone",
            "--to",
            agent,
            "--name",
            "incoming",
            "Fix the token check.",
        ]);
        let bin = Path::new(env!("CARGO_BIN_EXE_relay"))
            .parent()
            .unwrap()
            .display()
            .to_string();
        for cmd in commands(&std::fs::read_to_string(skill_path(agent)).unwrap()) {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&cmd)
                .current_dir(&env.root)
                .env_clear()
                .env("PATH", format!("{bin}:/usr/bin:/bin"))
                .env("HOME", env.root.parent().unwrap())
                .env("RELAY_CONFIG", &cfg)
                .env("REQ", &req)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{agent}: `{cmd}` failed:\n{}",
                env.render(&out)
            );
        }
    }
}

#[test]
fn install_status_uninstall_in_a_temp_home() {
    let env = TestEnv::new();
    let home = env.root.parent().unwrap();
    // A user's settings with entries of their own, in their order.
    let settings = home.join(".claude/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    let original = "{\n  \"theme\": \"dark\",\n  \"permissions\": {\n    \"allow\": [\"Bash(git:*)\"],\n    \"deny\": [\"Read(.env)\"]\n  },\n  \"env\": {}\n}\n";
    std::fs::write(&settings, original).unwrap();
    assert_snapshot!(env.render(&env.run(&["skill", "status"])), @"
    claude  user     missing                  $HOME/.claude/skills/relay/SKILL.md
    codex   user     missing                  $HOME/.codex/skills/relay/SKILL.md
    gemini  user     missing                  $HOME/.gemini/skills/relay/SKILL.md
    claude  perms    not allowed              Skill(relay), Bash(relay:*) in $HOME/.claude/settings.json
    hint: headless claude (-p, outside bypass mode) asks before running the skill; `relay skill install --agent claude --allow` allows it
    ");
    assert_snapshot!(env.render(&env.run(&["skill", "install", "--allow"])), @"
    claude  user     written                  $HOME/.claude/skills/relay/SKILL.md
    codex   user     written                  $HOME/.codex/skills/relay/SKILL.md
    gemini  user     written                  $HOME/.gemini/skills/relay/SKILL.md
    claude  perms    allowed (added)          Skill(relay), Bash(relay:*) in $HOME/.claude/settings.json
    ");
    assert_snapshot!(std::fs::read_to_string(&settings).unwrap(), @r#"
    {
      "theme": "dark",
      "permissions": {
        "allow": ["Bash(git:*)", "Skill(relay)", "Bash(relay:*)"],
        "deny": ["Read(.env)"]
      },
      "env": {}
    }
    "#);
    // Installing twice changes nothing: same output words, same bytes, same mtimes.
    let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let files: Vec<PathBuf> = AGENTS
        .iter()
        .map(|a| home.join(format!(".{a}/skills/relay/SKILL.md")))
        .chain([settings.clone()])
        .collect();
    let before: Vec<_> = files.iter().map(|f| mtime(f)).collect();
    let again = env.render(&env.run(&["skill", "install", "--allow"]));
    assert_eq!(again.matches("unchanged").count(), 3, "{again}");
    assert!(
        again.contains("allowed ") && !again.contains("(added)"),
        "{again}"
    );
    assert_eq!(files.iter().map(|f| mtime(f)).collect::<Vec<_>>(), before);
    // Out of date after an older relay: status says so, install updates it.
    let codex = home.join(".codex/skills/relay/SKILL.md");
    std::fs::write(
        &codex,
        "---\nname: relay\ndescription: old\nmetadata:\n  installed-by: relay\n---\nold\n",
    )
    .unwrap();
    assert!(
        env.ok(&["skill", "status", "--agent", "codex"])
            .contains("out of date")
    );
    assert!(
        env.ok(&["skill", "install", "--agent", "codex"])
            .contains("updated")
    );
    // Uninstall removes relay's files and the entries `--allow` added, and nothing else.
    assert_snapshot!(env.render(&env.run(&["skill", "uninstall"])), @"
    claude  user     removed                  $HOME/.claude/skills/relay/SKILL.md
    codex   user     removed                  $HOME/.codex/skills/relay/SKILL.md
    gemini  user     removed                  $HOME/.gemini/skills/relay/SKILL.md
    claude  perms    removed                  Skill(relay), Bash(relay:*) in $HOME/.claude/settings.json
    ");
    // Byte for byte what the user had: their formatting, order and entries.
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), original);
    assert!(files[..3].iter().all(|f| !f.exists()));
}

#[test]
fn a_foreign_skill_named_relay_is_never_overwritten_or_removed() {
    let env = TestEnv::new();
    let theirs = env.root.join(".claude/skills/relay/SKILL.md");
    std::fs::create_dir_all(theirs.parent().unwrap()).unwrap();
    std::fs::write(
        &theirs,
        "---\nname: relay\ndescription: someone else's\n---\nmine\n",
    )
    .unwrap();
    let out = env.run(&["skill", "install", "--project", "--agent", "claude"]);
    assert_snapshot!(env.render(&out), @"
    ------- stderr -------
    relay: $ROOT/.claude/skills/relay/SKILL.md is a skill named relay that relay did not write
    hint: move it away, or pass --force to replace it
    [exit status: 5]
    ");
    let out = env.run(&["skill", "uninstall", "--project", "--agent", "claude"]);
    assert_eq!(code(&out), 0);
    assert!(std::fs::read_to_string(&theirs).unwrap().contains("mine"));
    let out = env.run(&[
        "skill",
        "install",
        "--project",
        "--agent",
        "claude",
        "--force",
    ]);
    assert_eq!(code(&out), 0, "{}", env.render(&out));
    assert!(
        std::fs::read_to_string(&theirs)
            .unwrap()
            .contains("installed-by: relay")
    );
}

#[test]
fn settings_relay_cannot_read_are_left_alone() {
    let env = TestEnv::new();
    let settings = env.root.parent().unwrap().join(".claude/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(&settings, "{ not json").unwrap();
    let out = env.run(&["skill", "install", "--agent", "claude", "--allow"]);
    assert_eq!(code(&out), 1, "{}", env.render(&out));
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), "{ not json");
}

/// `--user` is the explicit default; an install into an empty home, then an uninstall, leaves
/// that home as it was: no skill, no permission entry, no empty directory.
#[test]
fn uninstall_leaves_a_home_as_it_found_it() {
    let env = TestEnv::new();
    let home = env.root.parent().unwrap();
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(home)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    let out = env.ok(&["skill", "install", "--user", "--allow"]);
    assert!(out.contains("allowed (added)"), "{out}");
    assert!(home.join(".claude/settings.json").exists());
    assert_snapshot!(env.render(&env.run(&["skill", "uninstall", "--user"])), @"
    claude  user     removed                  $HOME/.claude/skills/relay/SKILL.md
    codex   user     removed                  $HOME/.codex/skills/relay/SKILL.md
    gemini  user     removed                  $HOME/.gemini/skills/relay/SKILL.md
    claude  perms    removed                  Skill(relay), Bash(relay:*) in $HOME/.claude/settings.json
    ");
    assert_eq!(listing(), before);
    let out = env.run(&["skill", "status", "--user", "--project"]);
    assert_eq!(code(&out), 2, "{}", env.render(&out));
}

/// Editing Claude Code's settings (`--allow`) changes relay's entries and nothing else: not
/// comments, big numbers, duplicate keys or formatting; a symlink's target is edited and the
/// link kept; permission bits kept; a file relay cannot edit safely is refused before any
/// skill is written.
#[test]
fn settings_edits_keep_everything_that_is_not_relays() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = TestEnv::new();
    let home = env.root.parent().unwrap();
    let real = home.join("dotfiles/claude-settings.json");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    let original = "{\n    // mine\n    \"big\": 123456789012345678901234567890,\n    \"dup\": 1,\n    \"dup\": 2,\n    \"permissions\": { \"allow\": [ \"Bash(ls:*)\" ] }\n}\n";
    std::fs::write(&real, original).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = home.join(".claude/settings.json");
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    env.ok(&["skill", "install", "--agent", "claude", "--allow"]);
    let edited = std::fs::read_to_string(&real).unwrap();
    assert_snapshot!(edited, @r#"
    {
        // mine
        "big": 123456789012345678901234567890,
        "dup": 1,
        "dup": 2,
        "permissions": { "allow": [ "Bash(ls:*)", "Skill(relay)", "Bash(relay:*)" ] }
    }
    "#);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::metadata(&real).unwrap().permissions().mode() & 0o777,
        0o600
    );
    env.ok(&["skill", "uninstall", "--agent", "claude"]);
    assert_eq!(std::fs::read_to_string(&real).unwrap(), original);

    // Read-only, or not JSON at all: refused, and no skill written either.
    let env = TestEnv::new();
    let home = env.root.parent().unwrap();
    let settings = home.join(".claude/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    for (text, mode) in [("{}\n", 0o444), ("{ not json", 0o644)] {
        std::fs::write(&settings, text).unwrap();
        std::fs::set_permissions(&settings, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = env.run(&["skill", "install", "--allow"]);
        assert_eq!(code(&out), 1, "{}", env.render(&out));
        assert!(!home.join(".claude/skills").exists(), "a skill was written");
        assert!(!home.join(".codex").exists(), "a skill was written");
        assert_eq!(std::fs::read_to_string(&settings).unwrap(), text);
        std::fs::set_permissions(&settings, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}
