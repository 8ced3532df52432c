//! `lockbox exec --watch`: lockbox stays as a small supervisor of one child (in its own process
//! group) and re-reads the sources every interval ([`lockbox_env::Watcher`]). When the child's
//! environment would change it does what `--on-change` says: send a signal (default SIGHUP),
//! restart the child (SIGTERM, `--grace`, SIGKILL, start again with the new environment), or
//! stop the child and exit [`EXIT_CHANGED`] so an orchestrator restarts the task. No change, no
//! action. SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to lockbox go to the
//! child's process group; lockbox exits with the child's code when it exits (128+N when a
//! signal N ended it, as shells report it).
//!
//! A poll that fails keeps the child running with what it has (one warning naming the source
//! and the error; the next poll at the next interval). After `--max-stale` of failing polls
//! lockbox warns once, and with `--fail-after` applies the `--on-change` action once (`exit`
//! then exits [`EXIT_STALE`]).

use std::ffi::OsString;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use lockbox_env::{ChildOptions, Health, Source, WatchOptions, Watcher, child_environment};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};

use crate::commands::exec::cannot_run;
use crate::commands::sources::ValueArgs;

/// lockbox's exit code after `--on-change exit` acted on a change (EX_TEMPFAIL).
pub const EXIT_CHANGED: u8 = 75;
/// lockbox's exit code after `--fail-after` with `--on-change exit` acted on stale values
/// (EX_UNAVAILABLE).
pub const EXIT_STALE: u8 = 69;

/// The `--watch` options of `exec`.
#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    /// Stay as a supervisor and re-read the sources every INTERVAL (30s, 5m; each wait
    /// jittered by up to 10%); act on the child only when its environment would change.
    #[arg(
        long = "watch",
        value_name = "INTERVAL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "60s",
        value_parser = parse_interval
    )]
    pub interval: Option<Duration>,
    /// With --watch, what a change does: signal:NAME (signal:HUP, signal:USR1, ...), restart
    /// (SIGTERM, --grace, SIGKILL, start again) or exit (stop the child, exit 75).
    #[arg(
        long = "on-change",
        value_name = "ACTION",
        default_value = "signal:HUP",
        requires = "interval"
    )]
    pub on_change: OnChange,
    /// With --watch, how long a child may take to exit after SIGTERM before SIGKILL.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_grace, requires = "interval")]
    pub grace: Duration,
    /// With --watch, warn once the values have not been read for this long (polls failing).
    #[arg(long = "max-stale", value_name = "DURATION", value_parser = parse_max_stale, requires = "interval")]
    pub max_stale: Option<Duration>,
    /// With --max-stale, apply the --on-change action once the values are that stale (exit
    /// then exits 69).
    #[arg(long = "fail-after", requires = "max_stale")]
    pub fail_after: bool,
}

fn parse_interval(s: &str) -> Result<Duration, lockbox_core::Error> {
    let d = lockbox_env::parse_duration("--watch", s)?;
    if d < Duration::from_millis(100) {
        return Err(lockbox_core::Error::invalid_config(
            "--watch",
            format!("{s:?}: poll at most every 100ms"),
        ));
    }
    Ok(d)
}

fn parse_grace(s: &str) -> Result<Duration, lockbox_core::Error> {
    lockbox_env::parse_duration("--grace", s)
}

fn parse_max_stale(s: &str) -> Result<Duration, lockbox_core::Error> {
    lockbox_env::parse_duration("--max-stale", s)
}

/// What a change does to the child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnChange {
    /// Send this signal to the child's process group.
    Signal(Signal),
    /// SIGTERM, wait --grace, SIGKILL, start again with the new environment.
    Restart,
    /// Stop the child as for restart, then exit.
    Exit,
}

impl FromStr for OnChange {
    type Err = lockbox_core::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "restart" => return Ok(OnChange::Restart),
            "exit" => return Ok(OnChange::Exit),
            _ => {}
        }
        let bad = |why: &str| {
            lockbox_core::Error::invalid_config(
                "--on-change",
                format!("{s:?}: {why}; use signal:NAME (signal:HUP), restart or exit"),
            )
        };
        let name = s
            .strip_prefix("signal:")
            .ok_or_else(|| bad("unknown action"))?;
        let upper = name.to_ascii_uppercase();
        let full = if upper.starts_with("SIG") {
            upper
        } else {
            format!("SIG{upper}")
        };
        let sig = Signal::from_str(&full).map_err(|_| bad("unknown signal"))?;
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            return Err(bad("a program cannot handle that signal"));
        }
        Ok(OnChange::Signal(sig))
    }
}

/// The signals lockbox passes on to the child.
const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Runs `command` under a [`Watcher`] of `sources` until it exits; its exit code (or
/// [`EXIT_CHANGED`] / [`EXIT_STALE`] after `exit`).
pub async fn run(
    sources: Vec<Source>,
    interval: Duration,
    args: &WatchArgs,
    values: &ValueArgs,
    options: &ChildOptions,
    command: &[OsString],
) -> anyhow::Result<ExitCode> {
    // Listen before the child exists, so no forwarded signal is lost (or kills lockbox).
    let mut listeners = Vec::with_capacity(FORWARDED.len());
    for sig in FORWARDED {
        let l = signal(SignalKind::from_raw(sig as i32))
            .with_context(|| format!("cannot listen for {sig}"))?;
        listeners.push((sig, l));
    }
    let mut watcher = Watcher::start(sources, WatchOptions { interval }).await?;
    let parent: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let environment = |loaded: &lockbox_env::Loaded| -> anyhow::Result<Vec<(OsString, OsString)>> {
        let secrets = values.variables(loaded)?;
        Ok(child_environment(
            parent.iter().cloned(),
            &secrets,
            options,
        )?)
    };
    let mut env = environment(&watcher.current())?;
    let mut child = spawn(command, &env)?;
    let mut health = watcher.health();
    let mut stale_warned = false;
    let mut watching = true;
    loop {
        let forwarded = async {
            let recvs = listeners.iter_mut().map(|(sig, l)| {
                let sig = *sig;
                Box::pin(async move {
                    l.recv().await;
                    sig
                })
            });
            futures_select_all(recvs).await
        };
        tokio::select! {
            status = child.wait() => {
                let status = status.context("waiting for the child")?;
                return Ok(ExitCode::from(exit_code(status)));
            }
            sig = forwarded => {
                tracing::debug!("forwarding {sig} to the child");
                send(&child, sig);
            }
            loaded = next_change(&mut watcher, watching) => {
                let Some(loaded) = loaded else {
                    tracing::warn!("polling stopped; the child keeps the secrets it has");
                    watching = false;
                    continue;
                };
                match environment(&loaded) {
                    Ok(new) if new == env => {
                        tracing::debug!("the secrets changed, the child's environment did not");
                    }
                    Ok(new) => {
                        env = new;
                        tracing::info!("the secrets changed: {}", describe(args.on_change));
                        if let Some(code) = act(args, &mut child, command, &env, EXIT_CHANGED).await? {
                            return Ok(code);
                        }
                    }
                    Err(e) => tracing::warn!(
                        "the new secrets cannot be passed to the child ({e:#}); it keeps the ones it has"
                    ),
                }
            }
            Ok(()) = health.changed() => {
                let h = health.borrow_and_update().clone();
                let Some(max) = args.max_stale else { continue };
                if h == Health::Fresh {
                    stale_warned = false;
                } else if h.stale(max) && !stale_warned {
                    stale_warned = true;
                    if args.fail_after {
                        tracing::warn!("the values are older than --max-stale {max:?}: {}", describe(args.on_change));
                        if let Some(code) = act(args, &mut child, command, &env, EXIT_STALE).await? {
                            return Ok(code);
                        }
                    } else {
                        tracing::warn!("the values are older than --max-stale {max:?}; the child keeps running with them");
                    }
                }
            }
        }
    }
}

/// The next map from `watcher`, or never once `watching` is false.
async fn next_change(watcher: &mut Watcher, watching: bool) -> Option<Arc<lockbox_env::Loaded>> {
    if watching {
        watcher.changed().await
    } else {
        std::future::pending().await
    }
}

/// The first of `futures` to finish.
async fn futures_select_all<F: std::future::Future<Output = Signal> + Unpin>(
    futures: impl IntoIterator<Item = F>,
) -> Signal {
    let mut futures: Vec<F> = futures.into_iter().collect();
    std::future::poll_fn(move |cx| {
        for f in &mut futures {
            if let std::task::Poll::Ready(sig) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready(sig);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

fn describe(action: OnChange) -> String {
    match action {
        OnChange::Signal(sig) => format!("sending {sig} to the child"),
        OnChange::Restart => "restarting the child".to_owned(),
        OnChange::Exit => "stopping the child and exiting".to_owned(),
    }
}

/// Applies the `--on-change` action; `Some(code)` when lockbox should exit with it.
async fn act(
    args: &WatchArgs,
    child: &mut Child,
    command: &[OsString],
    env: &[(OsString, OsString)],
    exit: u8,
) -> anyhow::Result<Option<ExitCode>> {
    match args.on_change {
        OnChange::Signal(sig) => {
            send(child, sig);
            Ok(None)
        }
        OnChange::Restart => {
            if let Some(status) = stop(child, args.grace).await? {
                tracing::info!("the old child exited ({})", exit_code(status));
            }
            *child = spawn(command, env)?;
            Ok(None)
        }
        OnChange::Exit => {
            stop(child, args.grace).await?;
            Ok(Some(ExitCode::from(exit)))
        }
    }
}

/// SIGTERM to the child's group, up to `grace` for it to exit, then SIGKILL.
async fn stop(
    child: &mut Child,
    grace: Duration,
) -> anyhow::Result<Option<std::process::ExitStatus>> {
    if let Some(status) = child.try_wait()? {
        return Ok(Some(status));
    }
    send(child, Signal::SIGTERM);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => Ok(Some(status?)),
        Err(_) => {
            tracing::warn!("the child did not exit within --grace {grace:?}; sending SIGKILL");
            send(child, Signal::SIGKILL);
            Ok(Some(child.wait().await?))
        }
    }
}

/// `sig` to the child's process group (the child leads it).
fn send(child: &Child, sig: Signal) {
    let Some(pid) = child.id() else { return };
    let Ok(pid) = i32::try_from(pid) else { return };
    if let Err(e) = killpg(Pid::from_raw(pid), sig) {
        tracing::debug!("{sig} to the child: {e}");
    }
}

/// Starts `command` with exactly `env`, in its own process group.
fn spawn(command: &[OsString], env: &[(OsString, OsString)]) -> anyhow::Result<Child> {
    let (program, rest) = command.split_first().expect("clap requires COMMAND");
    let mut c = Command::new(program);
    c.args(rest)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .process_group(0);
    c.spawn().map_err(|e| cannot_run(program, &e).into())
}

/// The child's exit code, or 128+N when signal N ended it.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(255),
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_change_parses() {
        assert_eq!("restart".parse::<OnChange>().unwrap(), OnChange::Restart);
        assert_eq!("exit".parse::<OnChange>().unwrap(), OnChange::Exit);
        for s in ["signal:HUP", "signal:hup", "signal:SIGHUP"] {
            assert_eq!(
                s.parse::<OnChange>().unwrap(),
                OnChange::Signal(Signal::SIGHUP)
            );
        }
        assert_eq!(
            "signal:USR2".parse::<OnChange>().unwrap(),
            OnChange::Signal(Signal::SIGUSR2)
        );
        for bad in ["signal:NOPE", "signal:KILL", "reload", "HUP"] {
            let e = bad.parse::<OnChange>().unwrap_err().to_string();
            assert!(e.contains("--on-change") && e.contains("restart"), "{e}");
        }
    }
}
