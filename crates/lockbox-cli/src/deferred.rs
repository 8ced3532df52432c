//! Subcommand arguments that clap builds only when they are needed.

use std::fmt;

use clap::builder::{Resettable, StyledStr};
use clap::{ArgMatches, Args, Command, FromArgMatches};

/// A subcommand's arguments `T`, added to its clap [`Command`] with [`Command::defer`]: only
/// when that subcommand is parsed or its help shown, or when the whole tree is built (man
/// pages, completions, usage errors). Every run used to build all 20 subcommands' arguments
/// before parsing one, a large part of `lockbox --version`'s start.
pub struct Deferred<T>(pub T);

impl<T: Args> Args for Deferred<T> {
    fn augment_args(cmd: Command) -> Command {
        cmd.defer(|cmd| keep_about(cmd, T::augment_args))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        cmd.defer(|cmd| keep_about(cmd, T::augment_args_for_update))
    }
}

/// Adds the arguments with `augment`, keeping the subcommand's own help texts. Undeferred, the
/// derive adds the arguments first (the arguments struct's doc comment becomes the about) and
/// then sets the subcommand's about; deferred, the arguments come last, so the subcommand's
/// texts are put back.
fn keep_about(cmd: Command, augment: fn(Command) -> Command) -> Command {
    let text = |t: Option<&StyledStr>| t.cloned().map_or(Resettable::Reset, Resettable::Value);
    let about = text(cmd.get_about());
    let long_about = text(cmd.get_long_about());
    augment(cmd).about(about).long_about(long_about)
}

impl<T: FromArgMatches> FromArgMatches for Deferred<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Deferred)
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Deferred)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }

    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

/// As `T`'s own Debug: the wrapper is parsing plumbing, not part of what was parsed.
impl<T: fmt::Debug> fmt::Debug for Deferred<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own consistency checks over the whole tree, deferred arguments included.
    #[test]
    fn the_command_tree_passes_claps_checks() {
        crate::Cli::command().debug_assert();
    }

    /// Built, a subcommand has its arguments and keeps its own about, not its arguments
    /// struct's doc comment.
    #[test]
    fn a_built_subcommand_has_its_arguments_and_its_own_about() {
        let mut cli = crate::Cli::command();
        cli.build();
        let output = cli.find_subcommand("output").expect("lockbox output");
        assert_eq!(
            output.get_about().map(ToString::to_string).as_deref(),
            Some("Print the node's address, BLS public key and node ID")
        );
        assert!(output.get_long_about().is_none());
        assert!(
            output
                .get_arguments()
                .any(|a| a.get_long() == Some("data-dir"))
        );
    }

    /// Unbuilt (what `main` parses with), a subcommand has no arguments yet: they are added
    /// when clap descends into it.
    #[test]
    fn unbuilt_subcommands_have_no_arguments_yet() {
        let cli = crate::Cli::command();
        let output = cli.find_subcommand("output").expect("lockbox output");
        assert_eq!(output.get_arguments().count(), 0);
    }
}
