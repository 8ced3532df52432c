//! Flag values that may carry credentials (`--token`, `--backend-kwargs`): their Debug never
//! shows them, so printing the parsed arguments (a `{:?}` in a log line or a panic) leaks
//! nothing.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

/// A flag's text, redacted in Debug.
#[derive(Clone)]
pub struct Sensitive(String);

impl Sensitive {
    /// The text itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The text, moved out.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl FromStr for Sensitive {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Infallible> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s: Sensitive = "s.SUPERSECRET".parse().unwrap();
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some([REDACTED])");
        assert_eq!(s.expose(), "s.SUPERSECRET");
    }
}
