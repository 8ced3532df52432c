//! `lockbox completions SHELL`: a completion script generated from the clap definitions.
//! Install e.g. with `lockbox completions bash > /etc/bash_completion.d/lockbox`.

use std::io::{self, Write};

use clap::{Args, CommandFactory, ValueEnum};
use serde_json::json;

use crate::report::{Report, to_json};

/// The shells `lockbox completions` writes for.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Shell {
    // No doc comments here: clap would list the values one per line with their help, in a
    // layout unlike every other command's.
    Bash,
    Zsh,
    Fish,
}

/// Arguments of `lockbox completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    shell: Shell,
}

/// The script: as text, the script itself; as JSON `{"shell", "script"}`.
pub struct Completions {
    shell: Shell,
    script: String,
}

/// Generates the script for `args.shell`.
pub fn run(args: CompletionsArgs) -> anyhow::Result<Completions> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut crate::Cli::command(), "lockbox", &mut script);
    Ok(Completions {
        shell: args.shell,
        script: String::from_utf8(script)?,
    })
}

impl Report for Completions {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(self.script.as_bytes())
    }

    fn json(&self) -> anyhow::Result<Option<String>> {
        let shell = self
            .shell
            .to_possible_value()
            .expect("no variant is skipped");
        to_json(&json!({ "shell": shell.get_name(), "script": self.script }))
    }
}
