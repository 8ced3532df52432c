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
