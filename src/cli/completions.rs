//! `flotilla completions SHELL`: shell completion scripts, generated from the same
//! argument definitions the command line parses with.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::common::print_out;
use super::{Cli, Exit};
use crate::ops::Error;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  flotilla completions bash > ~/.local/share/bash-completion/completions/flotilla\n  flotilla completions zsh > \"${fpath[1]}/_flotilla\"\n  flotilla completions fish > ~/.config/fish/completions/flotilla.fish\n  flotilla completions powershell >> $PROFILE"
)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, powershell or elvish.
    #[arg(value_name = "SHELL")]
    pub shell: Shell,
}

pub fn run(args: CompletionsArgs) -> Result<Exit, Error> {
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "flotilla", &mut buf);
    let text = String::from_utf8(buf)
        .map_err(|e| Error::line(format!("error: the completion script is not text: {e}")))?;
    print_out(&text);
    Ok(Exit::Ok)
}
