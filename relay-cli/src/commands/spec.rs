//! `relay spec`: print the protocol this relay speaks (compiled in, so an installed relay
//! needs no checkout to show it).

use std::io::Write as _;

use relay_core::exit;

const PROTOCOL: &str = include_str!("../../../spec/PROTOCOL.md");

/// Print the relay protocol: file layout, fields, footer, sessions, validation, exit codes.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  relay spec | less
  relay spec | grep -A20 'Exit codes'")]
pub struct SpecArgs {}

pub fn run(_args: &SpecArgs) -> anyhow::Result<u8> {
    std::io::stdout().lock().write_all(PROTOCOL.as_bytes())?;
    Ok(exit::OK)
}
