//! The parts of Python's `urllib.parse` that Airflow's connection URI parser relies on,
//! reproduced with Python's quirks (scheme lowercasing, hostname lowercasing up to the first
//! `%`, first-`:` port split, `+` as space in query strings), so a URI gives the same
//! connection here as in Airflow.
//!
//! Nothing here ever puts the parsed text into an error message: a connection URI holds a
//! password.

use std::borrow::Cow;

/// Why a URI cannot be split. Messages never quote the URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SplitError {
    /// `[` without `]` (or the reverse), or a bracketed host that is not an IPv6 address.
    InvalidIpv6,
    /// The port is not digits, or is above 65535.
    InvalidPort,
    /// The netloc holds characters that NFKC normalisation turns into `/`, `?`, `#`, `@` or
    /// `:` (Python's `_checknetloc`).
    NfkcNetloc,
}

impl SplitError {
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Self::InvalidIpv6 => "the host has unbalanced or invalid [brackets] (an IPv6 address)",
            Self::InvalidPort => "the port is not an integer from 0 to 65535",
            Self::NfkcNetloc => {
                "the host part contains characters that change under NFKC normalisation into \
                 '/', '?', '#', '@' or ':'"
            }
        }
    }
}

/// `urllib.parse.urlsplit(url)`: scheme (lowercased), netloc, path, query, fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SplitUrl {
    pub(crate) scheme: String,
    pub(crate) netloc: String,
    pub(crate) path: String,
    pub(crate) query: String,
    #[allow(dead_code)]
    pub(crate) fragment: String,
}

fn is_scheme_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')
}

/// Python's `urlsplit` (3.12 semantics, `allow_fragments=True`).
pub(crate) fn urlsplit(url: &str) -> Result<SplitUrl, SplitError> {
    // Leading C0 controls and spaces go; tab, CR and LF go everywhere.
    let url = url.trim_start_matches(|c: char| c <= ' ');
    let url: String = url
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let mut rest: &str = &url;
    let mut scheme = String::new();
    if let Some(i) = rest.find(':')
        && i > 0
    {
        let candidate = &rest[..i];
        let first = candidate.chars().next().unwrap_or(' ');
        if first.is_ascii_alphabetic() && candidate.chars().all(is_scheme_char) {
            scheme = candidate.to_ascii_lowercase();
            rest = &rest[i + 1..];
        }
    }
    let mut netloc = String::new();
    if rest.starts_with("//") {
        let after = &rest[2..];
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        netloc = after[..end].to_string();
        rest = &after[end..];
        let open = netloc.contains('[');
        let close = netloc.contains(']');
        if open != close {
            return Err(SplitError::InvalidIpv6);
        }
        if open && close {
            check_bracketed_netloc(&netloc)?;
        }
    }
    let mut fragment = String::new();
    if let Some((before, after)) = rest.split_once('#') {
        fragment = after.to_string();
        rest = before;
    }
    let mut query = String::new();
    if let Some((before, after)) = rest.split_once('?') {
        query = after.to_string();
        rest = before;
    }
    check_netloc(&netloc)?;
    Ok(SplitUrl {
        scheme,
        netloc,
        path: rest.to_string(),
        query,
        fragment,
    })
}

/// Python's `_checknetloc`: a non-ASCII netloc whose NFKC form (without its `@`, `:`, `#`,
/// `?`) differs and holds one of `/?#@:` is refused, as `\u{2100}` becomes `a/c`.
fn check_netloc(netloc: &str) -> Result<(), SplitError> {
    use unicode_normalization::UnicodeNormalization;
    if netloc.is_ascii() {
        return Ok(());
    }
    let n: String = netloc
        .chars()
        .filter(|c| !matches!(c, '@' | ':' | '#' | '?'))
        .collect();
    let normalized: String = n.nfkc().collect();
    if normalized != n && normalized.contains(['/', '?', '#', '@', ':']) {
        return Err(SplitError::NfkcNetloc);
    }
    Ok(())
}

/// Python's bracket checks. Python 3.11 validates the text between the netloc's first `[`
/// and the next `]` (`_check_bracketed_host`); newer Pythons (`_check_bracketed_netloc`)
/// also refuse text between the user info and `[`, and anything but `:port` after `]`, which
/// 3.11 silently drops from the host. lockbox applies both.
fn check_bracketed_netloc(netloc: &str) -> Result<(), SplitError> {
    if let Some((_, after)) = netloc.split_once('[') {
        check_bracketed_host(after.split_once(']').map_or(after, |(h, _)| h))?;
    }
    let host_and_port = rpartition_after(netloc, '@');
    let Some((before, bracketed)) = host_and_port.split_once('[') else {
        return Ok(());
    };
    if !before.is_empty() {
        return Err(SplitError::InvalidIpv6);
    }
    let (host, port) = bracketed.split_once(']').unwrap_or((bracketed, ""));
    if !port.is_empty() && !port.starts_with(':') {
        return Err(SplitError::InvalidIpv6);
    }
    check_bracketed_host(host)
}

/// Python's `_check_bracketed_host`: an IPvFuture `v<hex>.<text>` or an IPv6 address
/// (with an optional zone id); an IPv4 address is refused.
fn check_bracketed_host(host: &str) -> Result<(), SplitError> {
    if let Some(rest) = host.strip_prefix('v') {
        let ok = rest.split_once('.').is_some_and(|(hex, tail)| {
            !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) && !tail.is_empty()
        });
        return if ok {
            Ok(())
        } else {
            Err(SplitError::InvalidIpv6)
        };
    }
    // A zone id (`%eth0`) may follow the address.
    let addr = match host.split_once('%') {
        Some((_, "")) => return Err(SplitError::InvalidIpv6),
        Some((a, _)) => a,
        None => host,
    };
    addr.parse::<std::net::Ipv6Addr>()
        .map(|_| ())
        .map_err(|_| SplitError::InvalidIpv6)
}

/// `s.rpartition(c)[2]`: the text after the last `c`, or all of `s`.
fn rpartition_after(s: &str, c: char) -> &str {
    s.rsplit_once(c).map_or(s, |(_, after)| after)
}

impl SplitUrl {
    /// `SplitResult.username`: `None` without `@`; may be empty.
    pub(crate) fn username(&self) -> Option<&str> {
        let (userinfo, _) = self.netloc.rsplit_once('@')?;
        Some(userinfo.split_once(':').map_or(userinfo, |(u, _)| u))
    }

    /// `SplitResult.password`: `None` without `@` or without `:` in the user info.
    pub(crate) fn password(&self) -> Option<&str> {
        let (userinfo, _) = self.netloc.rsplit_once('@')?;
        userinfo.split_once(':').map(|(_, p)| p)
    }

    /// `SplitResult._hostinfo`: (hostname as written, port text or `None`).
    fn hostinfo(&self) -> (&str, Option<&str>) {
        let hostinfo = rpartition_after(&self.netloc, '@');
        let (hostname, port) = match hostinfo.split_once('[') {
            Some((_, bracketed)) => {
                let (host, after) = bracketed.split_once(']').unwrap_or((bracketed, ""));
                let port = after.split_once(':').map_or("", |(_, p)| p);
                (host, port)
            }
            None => hostinfo.split_once(':').unwrap_or((hostinfo, "")),
        };
        (hostname, (!port.is_empty()).then_some(port))
    }

    /// `SplitResult.hostname`: `None` when empty; lowercased up to the first `%` (Python keeps
    /// an IPv6 zone id, and so anything after a `%`, as written).
    pub(crate) fn hostname(&self) -> Option<String> {
        let (hostname, _) = self.hostinfo();
        if hostname.is_empty() {
            return None;
        }
        Some(match hostname.split_once('%') {
            Some((head, tail)) => format!("{}%{tail}", head.to_lowercase()),
            None => hostname.to_lowercase(),
        })
    }

    /// `SplitResult.port`: digits only, 0 to 65535.
    pub(crate) fn port(&self) -> Result<Option<u16>, SplitError> {
        let (_, port) = self.hostinfo();
        let Some(port) = port else { return Ok(None) };
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SplitError::InvalidPort);
        }
        let digits = port.trim_start_matches('0');
        if digits.len() > 5 {
            return Err(SplitError::InvalidPort);
        }
        let n: u32 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| SplitError::InvalidPort)?
        };
        u16::try_from(n)
            .map(Some)
            .map_err(|_| SplitError::InvalidPort)
    }
}

/// Python's `urllib.parse.unquote`: `%XX` escapes become bytes, decoded as UTF-8 with
/// replacement characters; malformed escapes stay as written.
pub(crate) fn unquote(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    percent_encoding::percent_decode_str(s).decode_utf8_lossy()
}

/// Python's `parse_qsl(qs, keep_blank_values=True)`: `&`-separated pairs, `+` is a space,
/// empty pairs skipped, a pair without `=` has an empty value.
pub(crate) fn parse_qsl(qs: &str) -> Vec<(String, String)> {
    qs.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                unquote(&name.replace('+', " ")).into_owned(),
                unquote(&value.replace('+', " ")).into_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_python() {
        let u = urlsplit("Postgres://u:p@Host:5432/db?x=1#frag").unwrap();
        assert_eq!(u.scheme, "postgres");
        assert_eq!(u.netloc, "u:p@Host:5432");
        assert_eq!(u.path, "/db");
        assert_eq!(u.query, "x=1");
        assert_eq!(u.fragment, "frag");
        assert_eq!(u.username(), Some("u"));
        assert_eq!(u.password(), Some("p"));
        assert_eq!(u.hostname().as_deref(), Some("host"));
        assert_eq!(u.port(), Ok(Some(5432)));
    }

    #[test]
    fn user_info_edges() {
        let u = urlsplit("s://:pw@h").unwrap();
        assert_eq!(u.username(), Some(""));
        assert_eq!(u.password(), Some("pw"));
        let u = urlsplit("s://user@h").unwrap();
        assert_eq!(u.username(), Some("user"));
        assert_eq!(u.password(), None);
        let u = urlsplit("s://h").unwrap();
        assert_eq!(u.username(), None);
        // The last '@' separates user info from the host.
        let u = urlsplit("s://a@b:c@d").unwrap();
        assert_eq!(u.username(), Some("a@b"));
        assert_eq!(u.password(), Some("c"));
        assert_eq!(u.hostname().as_deref(), Some("d"));
    }

    #[test]
    fn hostname_is_lowercased_only_before_a_percent() {
        let u = urlsplit("s://AbC%2FDeF").unwrap();
        assert_eq!(u.hostname().as_deref(), Some("abc%2FDeF"));
    }

    #[test]
    fn ports() {
        assert_eq!(urlsplit("s://h:").unwrap().port(), Ok(None));
        assert_eq!(urlsplit("s://h:0080").unwrap().port(), Ok(Some(80)));
        assert_eq!(urlsplit("s://h:65535").unwrap().port(), Ok(Some(65535)));
        assert_eq!(
            urlsplit("s://h:65536").unwrap().port(),
            Err(SplitError::InvalidPort)
        );
        assert_eq!(
            urlsplit("s://h:12a").unwrap().port(),
            Err(SplitError::InvalidPort)
        );
        assert_eq!(
            urlsplit("s://h:-1").unwrap().port(),
            Err(SplitError::InvalidPort)
        );
    }

    #[test]
    fn ipv6() {
        let u = urlsplit("s://u:p@[::1]:5432/db").unwrap();
        assert_eq!(u.hostname().as_deref(), Some("::1"));
        assert_eq!(u.port(), Ok(Some(5432)));
        assert_eq!(urlsplit("s://[::1/db"), Err(SplitError::InvalidIpv6));
        assert_eq!(urlsplit("s://[nothex]"), Err(SplitError::InvalidIpv6));
        assert_eq!(urlsplit("s://a[::1]"), Err(SplitError::InvalidIpv6));
        assert_eq!(urlsplit("s://[1.2.3.4]"), Err(SplitError::InvalidIpv6));
        assert!(urlsplit("s://[v1.x]").is_ok());
        assert_eq!(urlsplit("s://[V1.x]"), Err(SplitError::InvalidIpv6));
        assert_eq!(urlsplit("s://[u]@h"), Err(SplitError::InvalidIpv6));
    }

    #[test]
    fn nfkc_netlocs() {
        assert_eq!(urlsplit("s://a\u{2100}b"), Err(SplitError::NfkcNetloc));
        assert_eq!(urlsplit("s://u\u{ff20}h"), Err(SplitError::NfkcNetloc));
        assert!(urlsplit("s://caf\u{e9}").is_ok());
        assert!(urlsplit("s://\u{fb01}x").is_ok()); // ﬁ -> fi: changes, but harmlessly
        assert!(urlsplit("s://h/\u{2100}").is_ok()); // only the netloc is checked
    }

    #[test]
    fn scheme_rules() {
        assert_eq!(urlsplit("1abc://h").unwrap().scheme, "");
        assert_eq!(urlsplit("a_b://h").unwrap().scheme, "");
        assert_eq!(urlsplit("a+b.c-d://h").unwrap().scheme, "a+b.c-d");
        assert_eq!(urlsplit("  \u{1}s://h").unwrap().scheme, "s");
        assert_eq!(urlsplit("s://h\tx").unwrap().netloc, "hx");
    }

    #[test]
    fn unquote_and_query() {
        assert_eq!(unquote("a%20b%zz%"), "a b%zz%");
        assert_eq!(unquote("%C3%A9"), "é");
        assert_eq!(unquote("%FF"), "\u{FFFD}");
        assert_eq!(
            parse_qsl("a=1&&b=&c&d=x+y%2B&a=2"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "".into()),
                ("c".into(), "".into()),
                ("d".into(), "x y+".into()),
                ("a".into(), "2".into()),
            ]
        );
    }
}
