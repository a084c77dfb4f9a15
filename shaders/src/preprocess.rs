//! A small WGSL preprocessor: `#include "path"` (or `#include NAME` where NAME is defined as a
//! quoted path; each file is included once), `#define NAME value`, `#if` / `#elif` / `#ifdef`
//! / `#ifndef` / `#else` / `#endif`, and whole-word substitution of defined names.
//!
//! `#if` takes one term: `NAME` (defined and not `0`), `!NAME`, `NAME == VALUE` or
//! `NAME != VALUE` (both sides substituted, compared as text).

use std::collections::{BTreeMap, BTreeSet};

use crate::ShaderError;

/// Names and values substituted into the source.
pub type Defines = BTreeMap<String, String>;

/// Looks a file up by its path under `wgsl/`.
pub type Resolve<'a> = &'a dyn Fn(&str) -> Option<&'static str>;

/// Expands `root` (a path under `wgsl/`) with `defines`.
pub fn expand(root: &str, defines: &Defines, resolve: Resolve<'_>) -> Result<String, ShaderError> {
    let mut st = State { defines: defines.clone(), included: BTreeSet::new(), out: String::new() };
    st.file(root, resolve, 0)?;
    Ok(st.out)
}

struct State {
    defines: Defines,
    included: BTreeSet<String>,
    out: String,
}

/// One level of `#if` nesting.
struct Cond {
    /// Lines are emitted in this branch.
    active: bool,
    /// A branch of this `#if` was already taken.
    taken: bool,
    /// The enclosing level is active.
    parent: bool,
}

impl State {
    fn file(&mut self, path: &str, resolve: Resolve<'_>, depth: usize) -> Result<(), ShaderError> {
        if depth > 16 {
            return Err(ShaderError::Preprocess {
                file: path.into(),
                line: 0,
                detail: "includes nest too deep".into(),
            });
        }
        if !self.included.insert(path.to_string()) {
            return Ok(());
        }
        let text = resolve(path).ok_or_else(|| ShaderError::MissingFile(path.to_string()))?;
        let mut stack: Vec<Cond> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let err =
                |detail: String| ShaderError::Preprocess { file: path.into(), line: n + 1, detail };
            let active = stack.last().is_none_or(|c| c.active);
            let trimmed = line.trim_start();
            let Some(directive) = trimmed.strip_prefix('#') else {
                if active {
                    self.out.push_str(&substitute(line, &self.defines));
                    self.out.push('\n');
                }
                continue;
            };
            let (word, rest) = directive.split_once(char::is_whitespace).unwrap_or((directive, ""));
            let rest = rest.trim();
            match word {
                "include" if active => {
                    let target = substitute(rest, &self.defines);
                    let inner = target
                        .trim()
                        .strip_prefix('"')
                        .and_then(|s| s.strip_suffix('"'))
                        .ok_or_else(|| {
                        err(format!("#include needs a quoted path, got `{target}`"))
                    })?;
                    self.file(inner, resolve, depth + 1)?;
                }
                "define" if active => {
                    let (name, value) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                    if name.is_empty() {
                        return Err(err("#define needs a name".into()));
                    }
                    self.defines.insert(name.to_string(), value.trim().to_string());
                }
                "include" | "define" => {}
                "if" | "ifdef" | "ifndef" => {
                    let v = match word {
                        "ifdef" => self.defines.contains_key(rest),
                        "ifndef" => !self.defines.contains_key(rest),
                        _ => self.eval(rest).map_err(err)?,
                    };
                    stack.push(Cond { active: active && v, taken: v, parent: active });
                }
                "elif" => {
                    let v = self.eval(rest).map_err(err)?;
                    let c = stack.last_mut().ok_or_else(|| err("#elif without #if".into()))?;
                    c.active = c.parent && !c.taken && v;
                    c.taken |= v;
                }
                "else" => {
                    let c = stack.last_mut().ok_or_else(|| err("#else without #if".into()))?;
                    c.active = c.parent && !c.taken;
                    c.taken = true;
                }
                "endif" => {
                    stack.pop().ok_or_else(|| err("#endif without #if".into()))?;
                }
                other => return Err(err(format!("unknown directive #{other}"))),
            }
        }
        if !stack.is_empty() {
            return Err(ShaderError::Preprocess {
                file: path.into(),
                line: 0,
                detail: "#if without #endif".into(),
            });
        }
        Ok(())
    }

    /// One `#if` term.
    fn eval(&self, expr: &str) -> Result<bool, String> {
        let value = |s: &str| substitute(s.trim(), &self.defines).trim().to_string();
        if let Some((a, b)) = expr.split_once("==") {
            return Ok(value(a) == value(b));
        }
        if let Some((a, b)) = expr.split_once("!=") {
            return Ok(value(a) != value(b));
        }
        let (negate, name) = match expr.strip_prefix('!') {
            Some(n) => (true, n.trim()),
            None => (false, expr.trim()),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("cannot evaluate `#if {expr}`"));
        }
        let on = self.defines.get(name).is_some_and(|v| v != "0" && v != "false");
        Ok(on != negate)
    }
}

/// Replaces every whole identifier that is a defined name by its value (numbers such as
/// `1e5` or `0x1fu` are skipped whole, so their letters are never substituted).
fn substitute(line: &str, defines: &Defines) -> String {
    // Comments are kept as written.
    let (line, comment) = match line.find("//") {
        Some(at) => line.split_at(at),
        None => (line, ""),
    };
    let mut out = String::with_capacity(line.len() + comment.len());
    let mut chars = line.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_ascii_alphanumeric() || c == '_' {
            let mut end = start + c.len_utf8();
            while let Some(&(i, d)) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' {
                    end = i + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let word = &line[start..end];
            match defines.get(word) {
                Some(v) if !c.is_ascii_digit() => out.push_str(v),
                _ => out.push_str(word),
            }
        } else {
            out.push(c);
        }
    }
    out.push_str(comment);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn files(path: &str) -> Option<&'static str> {
        match path {
            "main" => Some(
                "#include \"a\"\n#include INC\nlet x = N;\n#if A == 1\none\n#elif A == 2\ntwo\n#else\nother\n#endif\n#ifdef B\nb\n#endif\n#ifndef B\nnot b\n#endif\n",
            ),
            "a" => Some("#define N 7u\na\n"),
            "c" => Some("#include \"a\"\nc 1e5 N2 N\n"),
            "bad" => Some("#if X\n"),
            _ => None,
        }
    }

    #[test]
    fn expands_includes_defines_and_conditions() {
        let mut d = Defines::new();
        d.insert("INC".into(), "\"c\"".into());
        d.insert("A".into(), "2".into());
        let out = expand("main", &d, &files).unwrap();
        assert_eq!(out, "a\nc 1e5 N2 7u\nlet x = 7u;\ntwo\nnot b\n");
        d.insert("B".into(), String::new());
        d.insert("A".into(), "3".into());
        let out = expand("main", &d, &files).unwrap();
        assert!(out.ends_with("other\nb\n"), "{out}");
    }

    #[test]
    fn errors_name_the_file() {
        let d = Defines::new();
        assert!(matches!(expand("bad", &d, &files), Err(ShaderError::Preprocess { .. })));
        assert!(matches!(expand("nope", &d, &files), Err(ShaderError::MissingFile(_))));
        assert!(matches!(expand("main", &d, &files), Err(ShaderError::Preprocess { .. })));
    }
}
