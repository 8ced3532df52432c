//! The SSRF token: the first set variable of `ssrf_env_variables`; a `file://PATH` value is
//! read from that file (trimmed).

use lockbox_core::{Error, ErrorKind, Result};

/// Most bytes a token file may hold.
const MAX_TOKEN_FILE: u64 = 64 * 1024;

fn refused(message: String) -> Error {
    Error::new(ErrorKind::InvalidConfig, "serve", message)
}

/// Reads the token; refuses when none of `vars` is set, or the value (or file) is empty.
pub(crate) fn read_token(vars: &[String]) -> Result<String> {
    let Some((var, value)) = vars
        .iter()
        .find_map(|v| std::env::var(v).ok().map(|val| (v, val)))
    else {
        return Err(refused(format!(
            "no SSRF token: set one of {} (a value of file://PATH reads the token from PATH)",
            vars.join(", ")
        )));
    };
    let token = match value.strip_prefix("file://") {
        None => value,
        Some(path) => {
            use std::io::Read;
            let file = std::fs::File::open(path)
                .map_err(|e| refused(format!("{var}: cannot read the token file {path}: {e}")))?;
            let mut text = String::new();
            file.take(MAX_TOKEN_FILE)
                .read_to_string(&mut text)
                .map_err(|e| refused(format!("{var}: cannot read the token file {path}: {e}")))?;
            text.trim().to_owned()
        }
    };
    if token.is_empty() {
        return Err(refused(format!("no SSRF token: {var} is set but empty")));
    }
    Ok(token)
}
