//! Python `re` patterns, translated to fancy-regex syntax with Python's meaning.
//!
//! A lookup pattern is matched as `re.match(pattern, id, re.IGNORECASE)`. This module reads
//! the pattern with the rules of CPython 3.11's `re._parser` (the same escapes, the same
//! errors: bad escapes, `{` as a literal when it does not start a repeat, global inline flags
//! only at the start, `(?P<name>...)`/`(?P=name)`, group references only to closed groups) and
//! writes an equivalent fancy-regex pattern. Where the two engines give a construct different
//! meanings, the Python meaning is written out: `\Z` is the end of the string, `$` also matches
//! before a final newline, `\s` includes the information separators `\x1c`-`\x1f` (Python's
//! `str.isspace`), `\w` is letters, numbers and `_` (no combining marks), `\b` follows that
//! `\w`, and the `a` flag makes them ASCII.

use std::collections::HashMap;

/// A translation error: Python's own message (without the pattern, which the caller quotes).
/// Why Python's `re` would refuse a pattern, in `re.error`'s words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PatternError(String);

impl From<String> for PatternError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for PatternError {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatternError {}

const WHITESPACE: &[char] = &[' ', '\t', '\n', '\r', '\u{b}', '\u{c}'];

/// What the previous item of a sequence was, for Python's repeat rules.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Item {
    /// A position assertion (`^`, `$`, `\A`, `\Z`, `\b`, `\B`): "nothing to repeat".
    At,
    /// A repeat: "multiple repeat".
    Repeat,
    /// Anything else, starting at this offset of the output.
    Unit(usize),
}

/// Flags that change how the pattern is read (not just how it matches).
#[derive(Clone, Copy)]
struct Mode {
    verbose: bool,
    ascii: bool,
    /// `re.IGNORECASE` (on for lookup patterns; a scoped `(?-i:...)` turns it off).
    ignorecase: bool,
}

impl Default for Mode {
    fn default() -> Self {
        Self {
            verbose: false,
            ascii: false,
            ignorecase: true,
        }
    }
}

/// Python's IGNORECASE makes `i`, `I`, `İ` (U+0130) and `ı` (U+0131) one class (by simple
/// lowercase and its case fixes); Unicode simple case folding, which fancy-regex uses, keeps
/// the last two apart.
const DOTTED_I: [u32; 4] = [0x69, 0x49, 0x130, 0x131];
const DOTTED_I_CLASS: &str = r"[iI\x{130}\x{131}]";

struct Translator {
    chars: Vec<char>,
    pos: usize,
    out: String,
    /// Groups opened so far (group 0 counts, as in Python).
    groups: usize,
    /// Whether each group is closed.
    closed: Vec<bool>,
    names: HashMap<String, usize>,
    lookbehind_groups: Option<usize>,
    cond_refs: Vec<usize>,
    global: Mode,
    unicode_flag: bool,
    /// The width (shortest, longest; [`INF`] for unbounded) of what was just read, for
    /// Python's rule that a look-behind has a fixed width.
    width: Width,
    /// Each group's width, once closed.
    group_widths: Vec<Width>,
}

/// A width: (shortest, longest) match length in characters.
type Width = (u64, u64);

/// Python's MAXREPEAT: widths are capped here, and this stands for "unbounded".
const INF: u64 = u32::MAX as u64;

fn add(a: Width, b: Width) -> Width {
    (
        a.0.saturating_add(b.0).min(INF),
        a.1.saturating_add(b.1).min(INF),
    )
}

/// Translates Python pattern `pattern` into a fancy-regex pattern that matches, anchored at
/// the start only and case-insensitively, what `re.match(pattern, s, re.IGNORECASE)` matches.
pub(crate) fn translate(pattern: &str) -> Result<String, PatternError> {
    let mut t = Translator {
        chars: pattern.chars().collect(),
        pos: 0,
        out: String::new(),
        groups: 1,
        closed: vec![true],
        names: HashMap::new(),
        lookbehind_groups: None,
        cond_refs: Vec::new(),
        global: Mode::default(),
        unicode_flag: false,
        width: (0, 0),
        group_widths: vec![(0, 0)],
    };
    t.sub(Mode::default(), 0)?;
    if t.pos < t.chars.len() {
        return Err("unbalanced parenthesis".into());
    }
    if let Some(g) = t.cond_refs.iter().find(|g| **g >= t.groups) {
        return Err(PatternError::from(format!("invalid group reference {g}")));
    }
    Ok(format!(r"(?i)\A(?:{})", t.out))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// A literal character in fancy-regex syntax (outside or inside a class).
fn literal(c: u32) -> String {
    match char::from_u32(c) {
        Some(ch) if ch.is_alphanumeric() || ch == '_' => ch.to_string(),
        Some(_) => format!("\\x{{{c:x}}}"),
        // A lone surrogate (valid in a Python pattern) never matches text.
        None => r"[^\x{0}-\x{10ffff}]".to_string(),
    }
}

/// A literal outside a set, with Python's IGNORECASE equivalences where they differ from
/// Unicode simple case folding: the dotted and dotless i, and (with the ASCII flag) no case
/// folding of non-ASCII letters.
fn lit_case(c: u32, ignorecase: bool, ascii: bool) -> String {
    if ignorecase && !ascii && DOTTED_I.contains(&c) {
        return DOTTED_I_CLASS.to_string();
    }
    if ignorecase && ascii && c > 0x7f {
        return format!("(?-i:{})", literal(c));
    }
    literal(c)
}

/// Python's character categories.
#[derive(Clone, Copy)]
enum CharCategory {
    Digit,
    Space,
    Word,
}

fn cat_body(cat: CharCategory, ascii: bool) -> &'static str {
    match (cat, ascii) {
        (CharCategory::Digit, false) => r"\d",
        (CharCategory::Digit, true) => "0-9",
        (CharCategory::Space, false) => r"\s\x{1c}-\x{1f}",
        (CharCategory::Space, true) => r"\x{9}-\x{d}\x{20}",
        (CharCategory::Word, false) => r"\p{L}\p{N}_",
        (CharCategory::Word, true) => "0-9A-Za-z_",
    }
}

fn cat_class(cat: CharCategory, negate: bool, ascii: bool) -> String {
    format!(
        "[{}{}]",
        if negate { "^" } else { "" },
        cat_body(cat, ascii)
    )
}

/// One member of a character set.
enum Member {
    Lit(u32),
    Range(u32, u32),
    CharCategory(CharCategory, bool),
}

impl Translator {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, ch: char) -> bool {
        if self.peek() == Some(ch) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn get(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn getwhile(&mut self, n: usize, ok: impl Fn(char) -> bool) -> String {
        let mut s = String::new();
        for _ in 0..n {
            match self.peek() {
                Some(c) if ok(c) => {
                    s.push(c);
                    self.pos += 1;
                }
                _ => break,
            }
        }
        s
    }

    fn getuntil(&mut self, end: char, what: &str) -> Result<String, PatternError> {
        let mut s = String::new();
        loop {
            match self.get() {
                None if s.is_empty() => return Err(PatternError::from(format!("missing {what}"))),
                None => {
                    return Err(PatternError::from(format!(
                        "missing {end}, unterminated name"
                    )));
                }
                Some(c) if c == end => {
                    if s.is_empty() {
                        return Err(PatternError::from(format!("missing {what}")));
                    }
                    return Ok(s);
                }
                Some(c) => s.push(c),
            }
        }
    }

    /// An alternation: `a|b|c`.
    fn sub(&mut self, mode: Mode, nested: usize) -> Result<(), PatternError> {
        let mut mode = mode;
        let mut first = nested == 0;
        let mut width: Option<Width> = None;
        loop {
            mode = self.seq(mode, nested, first)?;
            width = Some(match width {
                None => self.width,
                Some(w) => (w.0.min(self.width.0), w.1.max(self.width.1)),
            });
            first = false;
            if !self.eat('|') {
                self.width = width.unwrap_or((0, 0));
                return Ok(());
            }
            self.out.push('|');
            if nested == 0 {
                mode.verbose = self.global.verbose;
            }
        }
    }

    /// A sequence up to `|`, `)` or the end. Returns the mode (global flags may change it).
    fn seq(&mut self, mut mode: Mode, nested: usize, first: bool) -> Result<Mode, PatternError> {
        let mut last: Option<Item> = None;
        let mut any = false;
        let mut widths: Vec<Width> = Vec::new();
        while let Some(this) = self.peek() {
            if this == '|' || this == ')' {
                break;
            }
            self.pos += 1;
            if mode.verbose {
                if WHITESPACE.contains(&this) {
                    continue;
                }
                if this == '#' {
                    while let Some(c) = self.get() {
                        if c == '\n' {
                            break;
                        }
                    }
                    continue;
                }
            }
            let ascii = mode.ascii || self.global.ascii;
            let start = self.out.len();
            match this {
                '\\' => {
                    let item = self.escape(ascii)?;
                    widths.push(self.width);
                    last = Some(match item {
                        Item::Unit(_) => Item::Unit(start),
                        other => other,
                    });
                }
                '[' => {
                    self.class(ascii, mode.ignorecase)?;
                    widths.push((1, 1));
                    last = Some(Item::Unit(start));
                }
                '*' | '+' | '?' | '{' => {
                    let (min, max) = match this {
                        '?' => (0, Some(1)),
                        '*' => (0, None),
                        '+' => (1, None),
                        _ => match self.brace_repeat()? {
                            Some(r) => r,
                            None => {
                                self.out.push_str(&literal('{' as u32));
                                last = Some(Item::Unit(start));
                                widths.push((1, 1));
                                any = true;
                                continue;
                            }
                        },
                    };
                    let unit_start = match last {
                        None | Some(Item::At) => return Err("nothing to repeat".into()),
                        Some(Item::Repeat) => return Err("multiple repeat".into()),
                        Some(Item::Unit(s)) => s,
                    };
                    let unit_w = widths.pop().unwrap_or((0, 0));
                    let hi = max.unwrap_or(INF);
                    widths.push((
                        unit_w.0.saturating_mul(min).min(INF),
                        unit_w.1.saturating_mul(hi).min(INF),
                    ));
                    let q = match (min, max) {
                        (0, Some(1)) => "?".to_string(),
                        (0, None) => "*".to_string(),
                        (1, None) => "+".to_string(),
                        (m, None) => format!("{{{m},}}"),
                        (m, Some(n)) if m == n => format!("{{{m}}}"),
                        (m, Some(n)) => format!("{{{m},{n}}}"),
                    };
                    // fancy-regex repeats a group; wrap the unit so the quantifier applies to
                    // all of it.
                    let unit = self.out.split_off(unit_start);
                    if unit_w == (0, 0) {
                        // Repeating something that matches only the empty string (an empty
                        // group, a look-around): Python allows it, fancy-regex does not. Zero
                        // repeats allowed is "it, or nothing"; otherwise it is just it.
                        let _ = self.eat('?') || self.eat('+');
                        if min == 0 {
                            self.out.push_str(&format!("(?:{unit}|)"));
                        } else {
                            self.out.push_str(&format!("(?:{unit})"));
                        }
                    } else if self.eat('?') {
                        self.out.push_str(&format!("(?:{unit}){q}?"));
                    } else if self.eat('+') {
                        self.out.push_str(&format!("(?>(?:{unit}){q})"));
                    } else {
                        self.out.push_str(&format!("(?:{unit}){q}"));
                    }
                    last = Some(Item::Repeat);
                }
                '.' => {
                    self.out.push('.');
                    widths.push((1, 1));
                    last = Some(Item::Unit(start));
                }
                '^' => {
                    self.out.push('^');
                    last = Some(Item::At);
                }
                '$' => {
                    self.out.push_str(r"(?:$|(?=\n\z))");
                    last = Some(Item::At);
                }
                '(' => match self.group(mode, nested, first && !any)? {
                    GroupOutcome::Item(item) => {
                        widths.push(self.width);
                        last = Some(match item {
                            Item::Unit(_) => Item::Unit(start),
                            other => other,
                        })
                    }
                    GroupOutcome::Nothing => continue,
                    GroupOutcome::Global(new) => {
                        mode = new;
                        continue;
                    }
                },
                c => {
                    self.out
                        .push_str(&lit_case(c as u32, mode.ignorecase, ascii));
                    widths.push((1, 1));
                    last = Some(Item::Unit(start));
                }
            }
            any = true;
        }
        self.width = widths.into_iter().fold((0, 0), add);
        Ok(mode)
    }

    /// After `{`: a repeat `{m}`, `{m,}`, `{,n}`, `{m,n}`, or `None` (a literal `{`; nothing
    /// consumed).
    fn brace_repeat(&mut self) -> Result<Option<(u64, Option<u64>)>, PatternError> {
        let here = self.pos;
        if self.peek() == Some('}') {
            return Ok(None);
        }
        let lo = self.getwhile(usize::MAX, |c| c.is_ascii_digit());
        let hi = if self.eat(',') {
            Some(self.getwhile(usize::MAX, |c| c.is_ascii_digit()))
        } else {
            None
        };
        if !self.eat('}') {
            self.pos = here;
            return Ok(None);
        }
        const MAXREPEAT: u64 = u32::MAX as u64;
        let parse = |s: &str| -> Result<u64, PatternError> {
            match s.parse::<u64>() {
                Ok(n) if n < MAXREPEAT => Ok(n),
                _ => Err("the repetition number is too large".into()),
            }
        };
        let min = if lo.is_empty() { 0 } else { parse(&lo)? };
        let max = match &hi {
            None => Some(min),
            Some(h) if h.is_empty() => None,
            Some(h) => Some(parse(h)?),
        };
        if let Some(m) = max
            && m < min
        {
            return Err("min repeat greater than max repeat".into());
        }
        Ok(Some((min, max)))
    }

    fn hex(&mut self, n: usize, escape: char) -> Result<u32, PatternError> {
        let digits = self.getwhile(n, |c| c.is_ascii_hexdigit());
        if digits.len() != n {
            return Err(PatternError::from(format!(
                "incomplete escape \\{escape}{digits}"
            )));
        }
        let v = u32::from_str_radix(&digits, 16).map_err(|e| e.to_string())?;
        if v > 0x10ffff {
            return Err(PatternError::from(format!("bad escape \\{escape}{digits}")));
        }
        Ok(v)
    }

    /// An escape outside a set (after the backslash).
    fn escape(&mut self, ascii: bool) -> Result<Item, PatternError> {
        let Some(c) = self.get() else {
            return Err("bad escape (end of pattern)".into());
        };
        let unit = Item::Unit(0);
        let word = cat_class(CharCategory::Word, false, ascii);
        // Assertions are zero-width; everything else here is one character (a backreference
        // takes its group's width below).
        self.width = if matches!(c, 'A' | 'Z' | 'b' | 'B') {
            (0, 0)
        } else {
            (1, 1)
        };
        match c {
            'A' => {
                self.out.push_str(r"\A");
                return Ok(Item::At);
            }
            'Z' => {
                self.out.push_str(r"\z");
                return Ok(Item::At);
            }
            'b' => {
                self.out
                    .push_str(&format!("(?:(?<={word})(?!{word})|(?<!{word})(?={word}))"));
                return Ok(Item::At);
            }
            'B' => {
                self.out
                    .push_str(&format!("(?:(?<={word})(?={word})|(?<!{word})(?!{word}))"));
                return Ok(Item::At);
            }
            'd' | 'D' | 's' | 'S' | 'w' | 'W' => {
                let cat = match c.to_ascii_lowercase() {
                    'd' => CharCategory::Digit,
                    's' => CharCategory::Space,
                    _ => CharCategory::Word,
                };
                self.out
                    .push_str(&cat_class(cat, c.is_ascii_uppercase(), ascii));
                return Ok(unit);
            }
            _ => {}
        }
        let v = match c {
            'a' => 7,
            'f' => 0xc,
            'n' => 0xa,
            'r' => 0xd,
            't' => 9,
            'v' => 0xb,
            'x' => self.hex(2, 'x')?,
            'u' => self.hex(4, 'u')?,
            'U' => self.hex(8, 'U')?,
            'N' => return Err(named_unsupported()),
            '0' => {
                let more = self.getwhile(2, |c| ('0'..='7').contains(&c));
                u32::from_str_radix(&format!("0{more}"), 8).unwrap_or(0)
            }
            '1'..='9' => {
                let mut digits = c.to_string();
                if let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.pos += 1;
                    digits.push(d);
                    let oct = |c: char| ('0'..='7').contains(&c);
                    if oct(c) && oct(d) && self.peek().is_some_and(oct) {
                        digits.push(self.get().unwrap_or('0'));
                        let v = u32::from_str_radix(&digits, 8).unwrap_or(0);
                        if v > 0o377 {
                            return Err(PatternError::from(format!(
                                "octal escape value \\{digits} outside of range 0-0o377"
                            )));
                        }
                        self.out.push_str(&literal(v));
                        return Ok(unit);
                    }
                }
                let group: usize = digits.parse().unwrap_or(usize::MAX);
                if group < self.groups {
                    if !self.closed[group] {
                        return Err("cannot refer to an open group".into());
                    }
                    self.check_lookbehind_group(group)?;
                    self.out.push_str(&format!(r"(?:\{group})"));
                    self.width = self.group_widths[group];
                    return Ok(unit);
                }
                return Err(PatternError::from(format!(
                    "invalid group reference {group}"
                )));
            }
            c if c.is_ascii_alphanumeric() => {
                return Err(PatternError::from(format!("bad escape \\{c}")));
            }
            c => c as u32,
        };
        self.out.push_str(&literal(v));
        Ok(unit)
    }

    fn check_lookbehind_group(&self, group: usize) -> Result<(), PatternError> {
        if let Some(lb) = self.lookbehind_groups {
            if !self.closed.get(group).copied().unwrap_or(false) {
                return Err("cannot refer to an open group".into());
            }
            if group >= lb {
                return Err(
                    "cannot refer to group defined in the same lookbehind subpattern".into(),
                );
            }
        }
        Ok(())
    }

    /// An escape inside a set (after the backslash).
    fn class_escape(&mut self) -> Result<Member, PatternError> {
        let Some(c) = self.get() else {
            return Err("bad escape (end of pattern)".into());
        };
        Ok(Member::Lit(match c {
            'a' => 7,
            'b' => 8,
            'f' => 0xc,
            'n' => 0xa,
            'r' => 0xd,
            't' => 9,
            'v' => 0xb,
            'd' | 'D' | 's' | 'S' | 'w' | 'W' => {
                let cat = match c.to_ascii_lowercase() {
                    'd' => CharCategory::Digit,
                    's' => CharCategory::Space,
                    _ => CharCategory::Word,
                };
                return Ok(Member::CharCategory(cat, c.is_ascii_uppercase()));
            }
            'x' => self.hex(2, 'x')?,
            'u' => self.hex(4, 'u')?,
            'U' => self.hex(8, 'U')?,
            'N' => return Err(named_unsupported()),
            '0'..='7' => {
                let more = self.getwhile(2, |c| ('0'..='7').contains(&c));
                let digits = format!("{c}{more}");
                let v = u32::from_str_radix(&digits, 8).unwrap_or(0);
                if v > 0o377 {
                    return Err(PatternError::from(format!(
                        "octal escape value \\{digits} outside of range 0-0o377"
                    )));
                }
                v
            }
            c if c.is_ascii_alphanumeric() => {
                return Err(PatternError::from(format!("bad escape \\{c}")));
            }
            c => c as u32,
        }))
    }

    /// A set, after its `[`.
    fn class(&mut self, ascii: bool, ignorecase: bool) -> Result<(), PatternError> {
        let negate = self.eat('^');
        let mut set: Vec<Member> = Vec::new();
        loop {
            let Some(this) = self.get() else {
                return Err("unterminated character set".into());
            };
            if this == ']' && !set.is_empty() {
                break;
            }
            let code1 = if this == '\\' {
                self.class_escape()?
            } else {
                Member::Lit(this as u32)
            };
            if self.eat('-') {
                let Some(that) = self.get() else {
                    return Err("unterminated character set".into());
                };
                if that == ']' {
                    set.push(code1);
                    set.push(Member::Lit('-' as u32));
                    break;
                }
                let code2 = if that == '\\' {
                    self.class_escape()?
                } else {
                    Member::Lit(that as u32)
                };
                match (code1, code2) {
                    (Member::Lit(lo), Member::Lit(hi)) if hi >= lo => {
                        set.push(Member::Range(lo, hi))
                    }
                    _ => return Err("bad character range".into()),
                }
            } else {
                set.push(code1);
            }
        }
        self.out.push('[');
        if negate {
            self.out.push('^');
        }
        let dotted_i = ignorecase
            && !ascii
            && set.iter().any(|m| match m {
                Member::Lit(c) => DOTTED_I.contains(c),
                Member::Range(lo, hi) => DOTTED_I.iter().any(|c| (lo..=hi).contains(&c)),
                Member::CharCategory(..) => false,
            });
        if dotted_i {
            self.out.push_str(r"iI\x{130}\x{131}");
        }
        for m in set {
            match m {
                Member::Lit(c) if char::from_u32(c).is_none() => {}
                Member::Lit(c) => self.out.push_str(&literal(c)),
                Member::Range(lo, hi) => {
                    // Surrogates never occur in text: leave them out of the range.
                    let mut parts = vec![(lo, hi)];
                    if lo <= 0xdfff && hi >= 0xd800 {
                        parts = vec![(lo, 0xd7ff.min(hi)), (0xe000.max(lo), hi)];
                    }
                    for (a, b) in parts {
                        if a <= b && char::from_u32(a).is_some() && char::from_u32(b).is_some() {
                            self.out.push_str(&format!("\\x{{{a:x}}}-\\x{{{b:x}}}"));
                        }
                    }
                }
                Member::CharCategory(cat, false) => self.out.push_str(cat_body(cat, ascii)),
                Member::CharCategory(cat, true) => self.out.push_str(&cat_class(cat, true, ascii)),
            }
        }
        // A set of only surrogates matches nothing.
        if self.out.ends_with('[') || self.out.ends_with("[^") {
            self.out.push_str(r"\x{0}&&\x{1}");
        }
        self.out.push(']');
        Ok(())
    }

    /// A group, after its `(`.
    fn group(
        &mut self,
        mode: Mode,
        nested: usize,
        may_set_global: bool,
    ) -> Result<GroupOutcome, PatternError> {
        let mut capture = true;
        let mut atomic = false;
        let mut name = None;
        let mut open = String::from("(");
        let mut sub_mode = mode;
        if self.eat('?') {
            let Some(ch) = self.get() else {
                return Err("unexpected end of pattern".into());
            };
            match ch {
                'P' => {
                    if self.eat('<') {
                        let n = self.getuntil('>', "group name")?;
                        if !is_identifier(&n) {
                            return Err(PatternError::from(format!(
                                "bad character in group name {n:?}"
                            )));
                        }
                        name = Some(n);
                    } else if self.eat('=') {
                        let n = self.getuntil(')', "group name")?;
                        if !is_identifier(&n) {
                            return Err(PatternError::from(format!(
                                "bad character in group name {n:?}"
                            )));
                        }
                        let Some(&gid) = self.names.get(&n) else {
                            return Err(PatternError::from(format!("unknown group name {n:?}")));
                        };
                        if !self.closed[gid] {
                            return Err("cannot refer to an open group".into());
                        }
                        self.check_lookbehind_group(gid)?;
                        self.out.push_str(&format!(r"(?:\{gid})"));
                        self.width = self.group_widths[gid];
                        return Ok(GroupOutcome::Item(Item::Unit(0)));
                    } else {
                        return Err(PatternError::from(match self.get() {
                            None => "unexpected end of pattern".into(),
                            Some(c) => format!("unknown extension ?P{c}"),
                        }));
                    }
                }
                ':' => {
                    capture = false;
                    open = "(?:".into();
                }
                '#' => loop {
                    match self.get() {
                        None => return Err("missing ), unterminated comment".into()),
                        Some(')') => return Ok(GroupOutcome::Nothing),
                        Some(_) => {}
                    }
                },
                '=' | '!' | '<' => {
                    let mut dir_char = ch;
                    let mut behind = false;
                    if ch == '<' {
                        match self.get() {
                            None => return Err("unexpected end of pattern".into()),
                            Some(c @ ('=' | '!')) => {
                                dir_char = c;
                                behind = true;
                            }
                            Some(c) => {
                                return Err(PatternError::from(format!("unknown extension ?<{c}")));
                            }
                        }
                    }
                    let saved = self.lookbehind_groups;
                    if behind && saved.is_none() {
                        self.lookbehind_groups = Some(self.groups);
                    }
                    self.out.push_str(if behind { "(?<" } else { "(?" });
                    self.out.push(dir_char);
                    self.sub(mode, nested + 1)?;
                    if behind && saved.is_none() {
                        self.lookbehind_groups = None;
                    }
                    if behind && self.width.0 != self.width.1 {
                        return Err("look-behind requires fixed-width pattern".into());
                    }
                    if !self.eat(')') {
                        return Err("missing ), unterminated subpattern".into());
                    }
                    self.out.push(')');
                    self.width = (0, 0);
                    return Ok(GroupOutcome::Item(Item::Unit(0)));
                }
                '(' => {
                    let cond = self.getuntil(')', "group name")?;
                    let gid = if is_identifier(&cond) {
                        match self.names.get(&cond) {
                            Some(&g) => g,
                            None => {
                                return Err(PatternError::from(format!(
                                    "unknown group name {cond:?}"
                                )));
                            }
                        }
                    } else {
                        let g: usize = match cond.parse::<usize>() {
                            Ok(g) if cond.chars().all(|c| c.is_ascii_digit()) => g,
                            _ => {
                                return Err(PatternError::from(format!(
                                    "bad character in group name {cond:?}"
                                )));
                            }
                        };
                        if g == 0 {
                            return Err("bad group number".into());
                        }
                        if g >= 1 << 30 {
                            return Err(PatternError::from(format!("invalid group reference {g}")));
                        }
                        self.cond_refs.push(g);
                        g
                    };
                    self.check_lookbehind_group(gid)?;
                    self.out.push_str(&format!("(?({gid})"));
                    self.seq(mode, nested + 1, false)?;
                    let yes = self.width;
                    let mut width = (0, yes.1);
                    if self.eat('|') {
                        self.out.push('|');
                        self.seq(mode, nested + 1, false)?;
                        width = (yes.0.min(self.width.0), yes.1.max(self.width.1));
                        if self.peek() == Some('|') {
                            return Err("conditional backref with more than two branches".into());
                        }
                    }
                    if !self.eat(')') {
                        return Err("missing ), unterminated subpattern".into());
                    }
                    self.out.push(')');
                    self.width = width;
                    return Ok(GroupOutcome::Item(Item::Unit(0)));
                }
                '>' => {
                    capture = false;
                    atomic = true;
                    open = "(?>".into();
                }
                c if "aiLmsuxt-".contains(c) => {
                    match self.flags(c)? {
                        None => {
                            // global flags
                            if !may_set_global {
                                return Err(
                                    "global flags not at the start of the expression".into()
                                );
                            }
                            return Ok(GroupOutcome::Global(Mode {
                                verbose: self.global.verbose,
                                ..mode
                            }));
                        }
                        Some((add, del)) => {
                            capture = false;
                            if add.contains('x') {
                                sub_mode.verbose = true;
                            }
                            if del.contains('x') {
                                sub_mode.verbose = false;
                            }
                            if add.contains('a') {
                                sub_mode.ascii = true;
                            }
                            if add.contains('i') {
                                sub_mode.ignorecase = true;
                            }
                            if del.contains('i') {
                                sub_mode.ignorecase = false;
                            }
                            let on: String = add.chars().filter(|c| "ims".contains(*c)).collect();
                            let off: String = del.chars().filter(|c| "ims".contains(*c)).collect();
                            open = match (on.is_empty(), off.is_empty()) {
                                (true, true) => "(?:".into(),
                                (false, true) => format!("(?{on}:"),
                                (_, false) => format!("(?{on}-{off}:"),
                            };
                        }
                    }
                }
                c => return Err(PatternError::from(format!("unknown extension ?{c}"))),
            }
        }
        let gid = if capture {
            let gid = self.groups;
            self.groups += 1;
            self.closed.push(false);
            self.group_widths.push((0, 0));
            if let Some(n) = name {
                if let Some(old) = self.names.get(&n) {
                    return Err(PatternError::from(format!(
                        "redefinition of group name {n:?} as group {gid}; was group {old}"
                    )));
                }
                self.names.insert(n, gid);
            }
            Some(gid)
        } else {
            None
        };
        let _ = atomic;
        self.out.push_str(&open);
        self.sub(sub_mode, nested + 1)?;
        if !self.eat(')') {
            return Err("missing ), unterminated subpattern".into());
        }
        self.out.push(')');
        if let Some(g) = gid {
            self.closed[g] = true;
            self.group_widths[g] = self.width;
        }
        Ok(GroupOutcome::Item(Item::Unit(0)))
    }

    /// Inline flags after `(?`; `None` for global flags (`(?aiLmsux)`, applied here), else the
    /// added and removed flags of a scoped group.
    fn flags(&mut self, first: char) -> Result<Option<(String, String)>, PatternError> {
        let mut add = String::new();
        let mut del = String::new();
        let mut ch = first;
        if ch != '-' {
            loop {
                if ch == 'L' {
                    return Err("bad inline flags: cannot use 'L' flag with a str pattern".into());
                }
                add.push(ch);
                if add.contains('a') && add.contains('u') {
                    return Err("bad inline flags: flags 'a', 'u' and 'L' are incompatible".into());
                }
                ch = match self.get() {
                    None => return Err("missing -, : or )".into()),
                    Some(c) => c,
                };
                if ")-:".contains(ch) {
                    break;
                }
                if !"aiLmsuxt".contains(ch) {
                    return Err(PatternError::from(if ch.is_alphabetic() {
                        "unknown flag"
                    } else {
                        "missing -, : or )"
                    }));
                }
            }
        }
        if ch == ')' {
            // Global: verbose changes how the rest is read, ascii how classes translate; i, m
            // and s are written out for fancy-regex (i is always on).
            if add.contains('x') {
                self.global.verbose = true;
            }
            if add.contains('a') {
                if self.unicode_flag {
                    return Err("ASCII and UNICODE flags are incompatible".into());
                }
                self.global.ascii = true;
            }
            if add.contains('u') {
                if self.global.ascii {
                    return Err("ASCII and UNICODE flags are incompatible".into());
                }
                self.unicode_flag = true;
            }
            let ms: String = add.chars().filter(|c| "ms".contains(*c)).collect();
            if !ms.is_empty() {
                self.out.push_str(&format!("(?{ms})"));
            }
            return Ok(None);
        }
        if add.contains('t') {
            return Err("bad inline flags: cannot turn on global flag".into());
        }
        if ch == '-' {
            ch = match self.get() {
                None => return Err("missing flag".into()),
                Some(c) => c,
            };
            if !"aiLmsuxt".contains(ch) {
                return Err(PatternError::from(if ch.is_alphabetic() {
                    "unknown flag"
                } else {
                    "missing flag"
                }));
            }
            loop {
                if "auL".contains(ch) {
                    return Err("bad inline flags: cannot turn off flags 'a', 'u' and 'L'".into());
                }
                del.push(ch);
                ch = match self.get() {
                    None => return Err("missing :".into()),
                    Some(c) => c,
                };
                if ch == ':' {
                    break;
                }
                if !"aiLmsuxt".contains(ch) {
                    return Err(PatternError::from(if ch.is_alphabetic() {
                        "unknown flag"
                    } else {
                        "missing :"
                    }));
                }
            }
        }
        if del.contains('t') {
            return Err("bad inline flags: cannot turn off global flag".into());
        }
        if add.chars().any(|c| del.contains(c)) {
            return Err("bad inline flags: flag turned on and off".into());
        }
        Ok(Some((add, del)))
    }
}

enum GroupOutcome {
    Item(Item),
    Nothing,
    Global(Mode),
}

fn named_unsupported() -> PatternError {
    "\\N{...} (a character by its Unicode name) is not supported by lockbox; write the \
     character, or \\uXXXX"
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, s: &str) -> bool {
        let re = fancy_regex::Regex::new(&translate(pattern).unwrap()).unwrap();
        re.is_match(s).unwrap()
    }

    fn refused(pattern: &str) -> String {
        match translate(pattern) {
            Err(e) => e.to_string(),
            Ok(t) => match fancy_regex::Regex::new(&t) {
                Err(e) => e.to_string(),
                Ok(_) => panic!("{pattern:?} accepted as {t:?}"),
            },
        }
    }

    #[test]
    fn python_semantics() {
        assert!(m("te", "TEST"));
        assert!(!m("est", "test"));
        assert!(m(r"(?=t)\w+\Z", "test"));
        assert!(!m(r"t\Z", "t\n"));
        assert!(m(r"t$", "t\n"));
        assert!(!m(r"t$", "t\nx"));
        assert!(m(r"(a)\1", "aA"));
        assert!(m(r"(?P<x>a)(?P=x)", "aa"));
        assert!(m(r"a{", "a{"));
        assert!(m(r"a{1,x}", "a{1,x}"));
        assert!(m(r"a{,2}b", "aab"));
        assert!(m(r"x(?<=x)y", "xy"));
        assert!(m(r"(?!abc)a", "abd"));
        assert!(m(r"\s", "\u{1c}"));
        assert!(!m(r"\w", "\u{301}"));
        assert!(m(r"\d", "٣"));
        assert!(!m(r"(?a)\d", "٣"));
        assert!(m(r"[\s]x", "\u{1f}x"));
        assert!(m(r"[^\S]", "\u{1d}"));
        assert!(m(r"(?x) a b # comment", "ab"));
        assert!(m(r"[[]", "["));
        assert!(m(r"[a-c&&b]", "&"));
        assert!(m(r"\bfoo\b", "foo bar"));
        assert!(m(r"a++b", "aab"));
        assert!(m(r"(?>a+)b", "aab"));
        assert!(m(r"(a)?(?(1)b|c)", "c"));
        assert!(m(r"(?#c)(?i)x", "X"));
        assert!(m(r"(?s:.)", "\n"));
        assert!(!m(r".", "\n"));
        assert!(m(r"\x41\u0042\U00000043\101", "abca"));
        assert!(m(r"a.c|\.", "."));
        for (p, s) in [
            ("i", "\u{130}"),
            ("\u{131}", "I"),
            ("[h-j]", "\u{131}"),
            ("[^i]", "x"),
        ] {
            assert!(m(p, s), "{p} {s}");
        }
        assert!(!m("[^i]", "\u{130}"));
        assert!(!m("(?-i:i)", "I"));
        assert!(!m("(?a)\u{e9}", "\u{c9}"));
        assert!(m("(?:)*a", "a"));
        assert!(m("(?=a)*a", "a"));
        assert!(!m("(?=b)+a", "a"));
    }

    #[test]
    fn python_refusals() {
        for p in [
            "a(?i)",
            "(?i)a|(?m)b",
            r"\z",
            r"\p{L}",
            r"\1(a)",
            r"(a\1)",
            "*",
            "a**",
            "(?<n>a)",
            "(?<=a|bc)x",
            "(?<=a+)b",
            r"(a+)(?<=\1)",
            "(?L)a",
            "(",
            ")",
            "[a",
            r"[z-a]",
            r"\x4",
            "a{2,1}",
            r"(?P<1a>x)",
            "(?P=nope)",
            "^*",
            r"[\d-z]",
        ] {
            refused(p);
        }
    }
}
