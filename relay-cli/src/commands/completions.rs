//! `relay completions`: shell completion scripts.

use clap_complete::Shell;

/// Print a shell completion script.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  relay completions bash > ~/.local/share/bash-completion/completions/relay
  relay completions zsh > \"${fpath[1]}/_relay\"
  relay completions fish > ~/.config/fish/completions/relay.fish")]
pub struct CompletionsArgs {
    /// The shell to generate for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: &CompletionsArgs) -> anyhow::Result<u8> {
    let mut cmd = crate::cli::full_command();
    clap_complete::generate(args.shell, &mut cmd, "relay", &mut std::io::stdout());
    Ok(relay_core::exit::OK)
}
