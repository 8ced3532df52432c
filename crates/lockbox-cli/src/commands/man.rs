//! `lockbox man [COMMAND]`: the lockbox(1) man page, or lockbox-COMMAND(1), generated from the
//! clap definitions, as roff on stdout. Read with `lockbox man | man -l -`; install with
//! `lockbox man > /usr/local/share/man/man1/lockbox.1` (and `lockbox man sync >
//! .../lockbox-sync.1` for the pages lockbox(1) names).

use std::io::{self, Write};

use anyhow::anyhow;
use clap::{Args, CommandFactory};
use serde_json::json;

use crate::arg_error::ArgError;
use crate::report::{Report, to_json};

/// Arguments of `lockbox man`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// The command whose page to print, such as sync [default: the lockbox(1) page, which
    /// lists them all].
    #[arg(value_parser = known_command)]
    command: Option<String>,
}

/// A usage error (exit 2) unless `name` is one of lockbox's commands.
fn known_command(name: &str) -> Result<String, ArgError> {
    let cli = crate::Cli::command();
    match cli.find_subcommand(name) {
        Some(_) => Ok(name.to_owned()),
        None => {
            let known = cli
                .get_subcommands()
                .map(|c| c.get_name().to_owned())
                .collect();
            Err(ArgError::UnknownCommand { known })
        }
    }
}

/// The page: as text, the roff source; as JSON `{"page": "lockbox.1", "roff"}`.
pub struct ManPage {
    file: String,
    roff: String,
}

/// Renders the page: name, synopsis, description, options, subcommands, version.
pub fn run(args: ManArgs) -> anyhow::Result<ManPage> {
    let mut cmd = crate::Cli::command().disable_help_subcommand(true);
    cmd.build();
    if let Some(name) = &args.command {
        cmd = cmd
            .find_subcommand(name)
            .cloned()
            .ok_or_else(|| anyhow!("man: lockbox has no command {name:?}"))?;
    }
    let page = crate::man_pages::page(args.command.as_deref());
    let cmd = cmd.long_about(page.description);
    let man = clap_mangen::Man::new(cmd).source(concat!("lockbox ", env!("CARGO_PKG_VERSION")));
    let mut roff = Vec::new();
    man.render(&mut roff)?;
    roff.extend_from_slice(sections(&page).as_bytes());
    Ok(ManPage {
        file: man.get_filename(),
        roff: String::from_utf8(roff)?,
    })
}

/// CONFIGURATION (when the page has keys), ENVIRONMENT, FILES, EXIT STATUS and EXAMPLES, as
/// roff.
fn sections(page: &crate::man_pages::Page) -> String {
    use crate::man_pages::{COMMON_ENVIRONMENT, COMMON_EXIT};
    use clap_mangen::roff::{Roff, bold, roman};
    let mut roff = Roff::new();
    let mut list = |title: &str, items: &mut dyn Iterator<Item = &(&str, &str)>| {
        roff.control("SH", [title]);
        for (term, text) in items {
            roff.control("TP", []);
            roff.text([bold(*term)]);
            roff.text([roman(*text)]);
        }
    };
    if !page.config.is_empty() {
        list("CONFIGURATION", &mut page.config.iter());
    }
    list(
        "ENVIRONMENT",
        &mut page.environment.iter().chain(COMMON_ENVIRONMENT),
    );
    if page.files.is_empty() {
        list(
            "FILES",
            &mut [("None", "This command reads and writes no files.")].iter(),
        );
    } else {
        list("FILES", &mut page.files.iter());
    }
    list("EXIT STATUS", &mut COMMON_EXIT.iter().chain(page.exit));
    list("EXAMPLES", &mut page.examples.iter());
    roff.to_roff()
}

impl Report for ManPage {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(self.roff.as_bytes())
    }

    fn json(&self) -> anyhow::Result<Option<String>> {
        to_json(&json!({ "page": self.file, "roff": self.roff }))
    }
}
