//! One file per command. Each has its arguments, a `run` that does the work, and the report it
//! returns (see [`crate::report::Report`]).

pub mod completions;
pub mod delete;
pub mod env;
pub mod exec;
pub mod export;
pub mod generate;
pub mod get;
pub mod history;
pub mod import;
pub mod init;
pub mod list;
pub mod lookup;
pub mod man;
pub mod output;
pub mod policy;
pub mod put;
pub mod read;
pub mod render;
pub mod serve;
pub mod serve_token;
pub mod sources;
pub mod supervise;
pub mod sync;
