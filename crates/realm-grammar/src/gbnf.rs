//! llama.cpp's GBNF (`grammars/README.md` there) in llguidance's Lark dialect.
//!
//! GBNF: rules `name ::= alternatives`, the start rule `root`; terminals `"literal"` (escapes
//! `\n \r \t \\ \" \xHH \uHHHH \UHHHHHHHH`), character classes `[a-z]`, `[^"\\]`, any
//! character `.`; grouping `( )`; alternation `|`; repetition `* + ?` and `{m}`, `{m,}`,
//! `{m,n}`; comments from `#` to the end of a line; a rule may span lines.
//!
//! Lark: `start` for `root`; other rules renamed to Lark's lowercase names (`r_` + the name,
//! `-` as `_`); literals as JSON strings; a class or `.` as a one-character regex `/…/` with
//! every character written `\x{…}`. What does not convert cleanly (an undefined rule, a bad
//! escape, an unclosed group) is an error naming the line.

use std::collections::BTreeMap;

/// Converts a GBNF grammar to Lark, or says why it cannot.
pub fn to_lark(src: &str) -> Result<String, String> {
    let mut p = Parser { s: src.as_bytes(), i: 0, line: 1 };
    let mut rules: Vec<(String, String)> = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut used: Vec<(String, usize)> = Vec::new();
    p.skip_space(true);
    while !p.at_end() {
        let line = p.line;
        let name = p.name().ok_or_else(|| p.err("a rule name"))?;
        p.skip_space(false);
        if !p.eat_str("::=") {
            return Err(p.err(&format!("'::=' after the rule name '{name}'")));
        }
        p.skip_space(true);
        let body = p.alternatives(&mut used)?;
        if names.contains_key(&name) {
            return Err(format!("line {line}: the rule '{name}' is defined twice"));
        }
        let lark = lark_name(&name, names.len());
        names.insert(name.clone(), lark.clone());
        rules.push((name, body));
        p.skip_space(true);
    }
    if !names.contains_key("root") {
        return Err("no 'root' rule (the start of a GBNF grammar)".into());
    }
    if let Some((n, line)) = used.iter().find(|(n, _)| !names.contains_key(n)) {
        return Err(format!("line {line}: the rule '{n}' is used but not defined"));
    }
    let mut out = String::new();
    for (name, body) in &rules {
        // Rule references were written as `\u{0}name\u{0}`: now their Lark names.
        let mut text = String::new();
        let mut parts = body.split('\u{0}');
        text.push_str(parts.next().unwrap_or(""));
        while let (Some(r), Some(rest)) = (parts.next(), parts.next()) {
            text.push_str(names.get(r).map(String::as_str).unwrap_or(r));
            text.push_str(rest);
        }
        out.push_str(&format!(
            "{}: {}\n",
            names.get(name).map(String::as_str).unwrap_or(name),
            text
        ));
    }
    Ok(out)
}

fn lark_name(gbnf: &str, n: usize) -> String {
    if gbnf == "root" {
        return "start".into();
    }
    let base: String = gbnf
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect();
    // Distinct GBNF names may meet after lowercasing (`Foo`, `foo`): the rule's number keeps
    // them apart.
    format!("r{n}_{base}")
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn err(&self, want: &str) -> String {
        let found = match self.peek() {
            None => "the end".to_string(),
            Some(_) => {
                let rest = String::from_utf8_lossy(&self.s[self.i..]);
                let snippet: String = rest.chars().take(20).collect();
                format!("{snippet:?}")
            }
        };
        format!("line {}: expected {want}, found {found}", self.line)
    }

    fn eat_str(&mut self, t: &str) -> bool {
        if self.s[self.i..].starts_with(t.as_bytes()) {
            self.i += t.len();
            true
        } else {
            false
        }
    }

    /// Spaces and comments; newlines too where `newlines` (between rules, and inside a
    /// rule's body where a line ends in the middle of it).
    fn skip_space(&mut self, newlines: bool) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' => self.i += 1,
                b'\n' if newlines => {
                    self.i += 1;
                    self.line += 1;
                }
                b'#' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.i += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn name(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// Whether the next thing starts a new rule (`name ::=`), which ends the current body.
    fn at_rule_start(&self) -> bool {
        let mut j = self.i;
        while self.s.get(j).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_') {
            j += 1;
        }
        if j == self.i {
            return false;
        }
        while self.s.get(j).is_some_and(|c| *c == b' ' || *c == b'\t') {
            j += 1;
        }
        self.s[j..].starts_with(b"::=")
    }

    /// `seq | seq | …` up to the end of the rule (a new rule, the end, or `)` in a group).
    fn alternatives(&mut self, used: &mut Vec<(String, usize)>) -> Result<String, String> {
        let mut alts = vec![self.sequence(used)?];
        while self.peek() == Some(b'|') {
            self.i += 1;
            self.skip_space(true);
            alts.push(self.sequence(used)?);
        }
        Ok(alts.join(" | "))
    }

    fn sequence(&mut self, used: &mut Vec<(String, usize)>) -> Result<String, String> {
        let mut items: Vec<String> = Vec::new();
        loop {
            self.skip_space(false);
            // A newline inside a body continues it, unless the next line starts a new rule.
            if self.peek() == Some(b'\n') {
                let save = (self.i, self.line);
                self.skip_space(true);
                if self.at_end() || self.at_rule_start() {
                    self.i = save.0;
                    self.line = save.1;
                    break;
                }
                continue;
            }
            let Some(c) = self.peek() else { break };
            let atom = match c {
                b'|' | b')' => break,
                b'"' => self.literal()?,
                b'[' => self.class()?,
                b'.' => {
                    self.i += 1;
                    "/(?s:.)/".to_string()
                }
                b'(' => {
                    self.i += 1;
                    self.skip_space(true);
                    let inner = self.alternatives(used)?;
                    self.skip_space(true);
                    if self.peek() != Some(b')') {
                        return Err(self.err("')'"));
                    }
                    self.i += 1;
                    if inner.is_empty() { "\"\"".to_string() } else { format!("({inner})") }
                }
                _ => {
                    let line = self.line;
                    let n = self
                        .name()
                        .ok_or_else(|| self.err("a rule name, a literal, a class, '.' or '('"))?;
                    used.push((n.clone(), line));
                    format!("\u{0}{n}\u{0}")
                }
            };
            let atom = self.repetition(atom)?;
            items.push(atom);
        }
        Ok(if items.is_empty() { "\"\"".to_string() } else { items.join(" ") })
    }

    fn repetition(&mut self, atom: String) -> Result<String, String> {
        let mut atom = atom;
        loop {
            match self.peek() {
                Some(c @ (b'*' | b'+' | b'?')) => {
                    self.i += 1;
                    atom = format!("{}{}", group(&atom), c as char);
                }
                Some(b'{') => {
                    self.i += 1;
                    let m = self.number().ok_or_else(|| self.err("a number after '{'"))?;
                    let rep = if self.eat_str("}") {
                        format!("{{{m}}}")
                    } else if self.eat_str(",") {
                        self.skip_space(false);
                        if self.eat_str("}") {
                            format!("{{{m},}}")
                        } else {
                            let n = self.number().ok_or_else(|| self.err("a number or '}'"))?;
                            if n < m {
                                return Err(format!(
                                    "line {}: the repetition {{{m},{n}}} is empty",
                                    self.line
                                ));
                            }
                            if !self.eat_str("}") {
                                return Err(self.err("'}'"));
                            }
                            format!("{{{m},{n}}}")
                        }
                    } else {
                        return Err(self.err("'}' or ','"));
                    };
                    atom = format!("{}{rep}", group(&atom));
                }
                _ => return Ok(atom),
            }
        }
    }

    fn number(&mut self) -> Option<u64> {
        self.skip_space(false);
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        let n = std::str::from_utf8(&self.s[start..self.i]).ok()?.parse().ok();
        self.skip_space(false);
        n
    }

    /// One character of a literal or a class, escapes read.
    fn char(&mut self) -> Result<char, String> {
        let rest = std::str::from_utf8(&self.s[self.i..]).map_err(|_| self.err("UTF-8 text"))?;
        let mut it = rest.chars();
        let c = it.next().ok_or_else(|| self.err("a character"))?;
        self.i += c.len_utf8();
        if c == '\n' {
            return Err(format!("line {}: a line break inside a literal or class", self.line));
        }
        if c != '\\' {
            return Ok(c);
        }
        let e = self.peek().ok_or_else(|| self.err("an escape"))?;
        self.i += 1;
        let hex = |p: &mut Self, n: usize| -> Result<char, String> {
            let h = p.s.get(p.i..p.i + n).and_then(|h| std::str::from_utf8(h).ok()).unwrap_or("");
            let v = u32::from_str_radix(h, 16).map_err(|_| p.err(&format!("{n} hex digits")))?;
            p.i += n;
            char::from_u32(v).ok_or_else(|| format!("line {}: \\u{v:x} is not a character", p.line))
        };
        Ok(match e {
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'\\' => '\\',
            b'"' => '"',
            b'[' => '[',
            b']' => ']',
            b'-' => '-',
            b'^' => '^',
            b'x' => hex(self, 2)?,
            b'u' => hex(self, 4)?,
            b'U' => hex(self, 8)?,
            other => {
                return Err(format!("line {}: unknown escape '\\{}'", self.line, other as char));
            }
        })
    }

    fn literal(&mut self) -> Result<String, String> {
        self.i += 1; // "
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err("'\"' closing the literal")),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                _ => text.push(self.char()?),
            }
        }
        serde_json::to_string(&text).map_err(|e| e.to_string())
    }

    fn class(&mut self) -> Result<String, String> {
        self.i += 1; // [
        let negated = self.eat_str("^");
        let mut out = String::from(if negated { "/[^" } else { "/[" });
        let mut empty = true;
        loop {
            match self.peek() {
                None => return Err(self.err("']' closing the class")),
                Some(b']') => {
                    self.i += 1;
                    break;
                }
                _ => {
                    let lo = self.char()?;
                    out.push_str(&esc(lo));
                    if self.peek() == Some(b'-') && self.s.get(self.i + 1) != Some(&b']') {
                        self.i += 1;
                        let hi = self.char()?;
                        if hi < lo {
                            return Err(format!(
                                "line {}: the range {lo:?}-{hi:?} is backwards",
                                self.line
                            ));
                        }
                        out.push('-');
                        out.push_str(&esc(hi));
                    }
                    empty = false;
                }
            }
        }
        if empty {
            return Err(format!("line {}: an empty character class", self.line));
        }
        out.push_str("]/");
        Ok(out)
    }
}

/// A character in a regex class, written so that nothing in it is special.
fn esc(c: char) -> String {
    if c.is_ascii_alphanumeric() { c.to_string() } else { format!("\\x{{{:x}}}", c as u32) }
}

/// `atom` as one operand of a postfix operator.
fn group(atom: &str) -> String {
    let simple = !atom.contains(' ')
        || (atom.starts_with('(') && atom.ends_with(')') && balanced_outer(atom));
    if simple { atom.to_string() } else { format!("({atom})") }
}

/// Whether the parentheses at both ends of `s` enclose all of it.
fn balanced_outer(s: &str) -> bool {
    let mut depth = 0i32;
    let mut in_str = false;
    let mut in_rx = false;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_str = false;
            }
        } else if in_rx {
            if c == b'\\' {
                i += 1;
            } else if c == b'/' {
                in_rx = false;
            }
        } else {
            match c {
                b'"' => in_str = true,
                b'/' => in_rx = true,
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 && i + 1 < b.len() {
                        return false;
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn converts_rules_literals_classes_and_repetitions() {
        let g = r#"
# arithmetic
root ::= expr
expr ::= term (("+" | "-") term)*
term ::= [0-9]+ | "(" expr ")"
"#;
        let l = to_lark(g).unwrap();
        assert_eq!(
            l,
            "start: r1_expr\nr1_expr: r2_term ((\"+\" | \"-\") r2_term)*\nr2_term: /[0-9]/+ | \"(\" r1_expr \")\"\n"
        );
    }

    #[test]
    fn multi_line_bodies_escapes_and_counts() {
        let g = "root ::= \"a\\n\" [^\"\\\\]{2,3}\n   | x?\nx ::= .{1,} \"\\u00e9\"";
        let l = to_lark(g).unwrap();
        assert!(l.starts_with("start: \"a\\n\" /[^\\x{22}\\x{5c}]/{2,3} | r1_x?\n"), "{l}");
        assert!(l.contains("r1_x: /(?s:.)/{1,} \"é\""), "{l}");
    }

    #[test]
    fn errors_name_the_problem() {
        for (g, want) in [
            ("expr ::= \"a\"", "no 'root'"),
            ("root ::= foo", "'foo' is used but not defined"),
            ("root ::= \"a", "closing the literal"),
            ("root ::= [b-a]", "backwards"),
            ("root ::= (\"a\"", "')'"),
            ("root ::= \"a\"\nroot ::= \"b\"", "defined twice"),
            ("root = \"a\"", "'::='"),
            ("root ::= \"\\q\"", "unknown escape"),
            ("root ::= \"a\"{3,1}", "empty"),
        ] {
            let e = to_lark(g).unwrap_err();
            assert!(e.contains(want), "{g:?}: {e}");
        }
    }
}
