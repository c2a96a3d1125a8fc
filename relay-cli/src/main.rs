//! `relay`: hand a task to another coding agent through files and get a verifiable answer back.

fn main() -> std::process::ExitCode {
    relay_cli::main()
}
