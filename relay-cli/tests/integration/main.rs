//! Integration tests of the `relay` binary: one test binary, one module per area.

mod common;
mod conformance;
mod test_call;
mod test_concurrency;
mod test_doctor;
mod test_e2e_handoff;
mod test_e2e_peers;
mod test_e2e_review;
mod test_e2e_skills;
mod test_first_contact;
mod test_handoff;
mod test_help;
mod test_hook;
mod test_install;
mod test_json;
mod test_list_show;
mod test_note;
mod test_req;
mod test_res;
mod test_review;
mod test_skills;
mod test_validate;
mod test_verify;

/// Every `test_*.rs` file in this directory must be a module above, or its tests never run.
#[test]
fn no_forgotten_test_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration");
    let main = std::fs::read_to_string(dir.join("main.rs")).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(module) = name.strip_suffix(".rs").filter(|m| *m != "main") {
            assert!(
                main.contains(&format!("mod {module};")),
                "{name} is not declared in main.rs"
            );
        }
    }
}
