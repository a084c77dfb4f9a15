//! Chat templates: `tokenizer.chat_template` rendered with minijinja the way Hugging Face
//! renders it (Jinja2 with `trim_blocks`, `lstrip_blocks`, loop controls, `raise_exception`),
//! with llama.cpp's built-in formats as the fallback.

use minijinja::value::{Serde, Value, ValueKind, from_args};
use minijinja::{Environment, Error, ErrorKind, State, context};
use realm_gguf::{Gguf, keys};
use serde::{Deserialize, Serialize};

use crate::Tokenizer;
use crate::chat_builtin::BuiltinTemplate;
use crate::error::{Result, TokenizerError};

/// One chat turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, ...
    pub role: String,
    /// The text of the turn.
    pub content: String,
}

impl ChatMessage {
    /// A message with any role.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> ChatMessage {
        ChatMessage { role: role.into(), content: content.into() }
    }
    /// A `system` message.
    pub fn system(content: impl Into<String>) -> ChatMessage {
        ChatMessage::new("system", content)
    }
    /// A `user` message.
    pub fn user(content: impl Into<String>) -> ChatMessage {
        ChatMessage::new("user", content)
    }
    /// An `assistant` message.
    pub fn assistant(content: impl Into<String>) -> ChatMessage {
        ChatMessage::new("assistant", content)
    }
}

/// Marks errors that came from the template's own `raise_exception`.
const RAISED: &str = "raise_exception: ";

/// A chat template: Jinja source and/or a built-in format.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: Option<String>,
    builtin: Option<BuiltinTemplate>,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// The model's template (`tokenizer.chat_template`), with the built-in format detected from
    /// it as fallback. Without a template, the format is guessed from the vocabulary's special
    /// tokens (Gemma, Llama 3, Phi-3, ChatML); llama.cpp itself would use ChatML.
    pub fn from_gguf(gguf: &Gguf<'_>, tokenizer: &Tokenizer) -> Result<ChatTemplate> {
        let source = gguf.get_str(keys::TOKENIZER_CHAT_TEMPLATE)?.filter(|s| !s.is_empty());
        let text = |id: Option<u32>| {
            id.and_then(|i| tokenizer.token_text(i))
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .unwrap_or_default()
        };
        let builtin = match source {
            Some(s) => BuiltinTemplate::detect(s),
            None => Some(guess_from_vocab(tokenizer)),
        };
        Ok(ChatTemplate {
            source: source.map(str::to_owned),
            builtin,
            bos_token: text(tokenizer.bos()),
            eos_token: text(tokenizer.eos()),
        })
    }

    /// A Jinja template with the given `bos_token` / `eos_token` variables.
    pub fn new(
        source: impl Into<String>,
        bos_token: impl Into<String>,
        eos_token: impl Into<String>,
    ) -> ChatTemplate {
        let source = source.into();
        ChatTemplate {
            builtin: BuiltinTemplate::detect(&source),
            source: Some(source),
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
        }
    }

    /// A built-in format only.
    pub fn from_builtin(builtin: BuiltinTemplate) -> ChatTemplate {
        ChatTemplate {
            source: None,
            builtin: Some(builtin),
            bos_token: String::new(),
            eos_token: String::new(),
        }
    }

    /// The Jinja source, if any.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// The built-in format used when there is no Jinja source or it fails.
    pub fn builtin(&self) -> Option<BuiltinTemplate> {
        self.builtin
    }

    /// Render the conversation; `add_generation_prompt` opens the assistant's turn.
    ///
    /// When the Jinja template fails (parse error, unsupported feature, or its own
    /// `raise_exception`, e.g. a system message the template refuses) and a built-in format
    /// was detected, the built-in format renders instead, as llama.cpp's legacy path would;
    /// otherwise the error is returned. [`ChatTemplate::render_jinja`] never falls back.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        if let Some(src) = &self.source {
            match self.render_jinja(src, messages, add_generation_prompt) {
                Ok(s) => return Ok(s),
                Err(e) if self.builtin.is_none() => return Err(e),
                Err(_) => {}
            }
        }
        match self.builtin {
            Some(b) => Ok(b.render(messages, add_generation_prompt)),
            None => Err(TokenizerError::ChatTemplate {
                operation: "selection",
                reason: "no template".into(),
            }),
        }
    }

    /// Render the Jinja source only (no fallback).
    pub fn render_jinja(
        &self,
        source: &str,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let env = environment();
        let tmpl = env.template_from_str(source).map_err(|e| TokenizerError::ChatTemplate {
            operation: "parsing",
            reason: describe(&e),
        })?;
        let ctx = context! {
            messages => Value::from(Serde(messages)),
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.as_str(),
            eos_token => self.eos_token.as_str(),
            tools => Value::from(()),
            documents => Value::from(()),
        };
        tmpl.render(ctx).map_err(|e| {
            let reason = describe(&e);
            match e.detail().and_then(|d| d.strip_prefix(RAISED)) {
                Some(message) => TokenizerError::TemplateException { message: message.to_owned() },
                None => TokenizerError::ChatTemplate { operation: "rendering", reason },
            }
        })
    }
}

fn describe(e: &Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s += &format!(": {inner}");
        src = inner.source();
    }
    s
}

/// Pick a format from special tokens when the file has no template.
fn guess_from_vocab(t: &Tokenizer) -> BuiltinTemplate {
    let has = |s: &str| t.token_id(s).is_some();
    if has("<start_of_turn>") && has("<end_of_turn>") {
        BuiltinTemplate::Gemma
    } else if has("<|start_header_id|>") && has("<|eot_id|>") {
        BuiltinTemplate::Llama3
    } else if has("<|user|>") && has("<|assistant|>") && has("<|end|>") {
        BuiltinTemplate::Phi3
    } else {
        BuiltinTemplate::ChatMl
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    if let Ok(syntax) =
        minijinja::syntax::SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build()
    {
        env.set_syntax(syntax);
    }
    env.add_function("raise_exception", |message: String| -> std::result::Result<Value, Error> {
        Err(Error::new(ErrorKind::InvalidOperation, format!("{RAISED}{message}")))
    });
    env.set_unknown_method_callback(python_method);
    env
}

/// Python `str`/`dict` methods that Hugging Face templates call.
fn python_method(
    state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> std::result::Result<Value, Error> {
    if let Some(s) = value.as_str() {
        return string_method(s, method, args);
    }
    if value.kind() == ValueKind::Map {
        match method {
            "items" => {
                let () = from_args(args)?;
                return state.apply_filter("items", std::slice::from_ref(value));
            }
            "keys" | "values" => {
                let () = from_args(args)?;
                let mut out = Vec::new();
                for key in value.try_iter()? {
                    out.push(if method == "keys" { key } else { value.get_item(&key)? });
                }
                return Ok(Value::from(out));
            }
            "get" => {
                let (key, default): (Value, Option<Value>) = from_args(args)?;
                let v = value.get_item(&key)?;
                return Ok(if v.is_undefined() { default.unwrap_or(Value::from(())) } else { v });
            }
            _ => {}
        }
    }
    Err(Error::from(ErrorKind::UnknownMethod))
}

fn affix_matches(s: &str, arg: &Value, starts: bool) -> std::result::Result<bool, Error> {
    let test = |p: &str| if starts { s.starts_with(p) } else { s.ends_with(p) };
    if let Some(p) = arg.as_str() {
        return Ok(test(p));
    }
    for item in arg.try_iter()? {
        if item.as_str().is_some_and(test) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn string_method(s: &str, method: &str, args: &[Value]) -> std::result::Result<Value, Error> {
    let stripped = |chars: Option<String>, left: bool, right: bool| -> String {
        let pred = |c: char| match &chars {
            Some(set) => set.contains(c),
            None => c.is_whitespace(),
        };
        let mut t = s;
        if left {
            t = t.trim_start_matches(pred);
        }
        if right {
            t = t.trim_end_matches(pred);
        }
        t.to_owned()
    };
    Ok(match method {
        "strip" | "lstrip" | "rstrip" => {
            let (chars,): (Option<String>,) = from_args(args)?;
            Value::from(stripped(chars, method != "rstrip", method != "lstrip"))
        }
        "upper" => Value::from(s.to_uppercase()),
        "lower" => Value::from(s.to_lowercase()),
        "capitalize" => {
            let mut cs = s.chars();
            let first = cs.next().map(|c| c.to_uppercase().collect::<String>()).unwrap_or_default();
            Value::from(first + &cs.as_str().to_lowercase())
        }
        "title" => {
            let mut out = String::with_capacity(s.len());
            let mut prev_cased = false;
            for c in s.chars() {
                if prev_cased {
                    out.extend(c.to_lowercase())
                } else {
                    out.extend(c.to_uppercase())
                }
                prev_cased = c.is_alphabetic();
            }
            Value::from(out)
        }
        "startswith" | "endswith" => {
            let (arg,): (Value,) = from_args(args)?;
            Value::from(affix_matches(s, &arg, method == "startswith")?)
        }
        "split" => {
            let (sep, maxsplit): (Option<String>, Option<i64>) = from_args(args)?;
            let limit = maxsplit.filter(|&m| m >= 0).map(|m| m as usize + 1).unwrap_or(usize::MAX);
            let parts: Vec<Value> = match sep {
                Some(sep) if sep.is_empty() => {
                    return Err(Error::new(ErrorKind::InvalidOperation, "empty separator"));
                }
                Some(sep) => s.splitn(limit, sep.as_str()).map(Value::from).collect(),
                None => s.split_whitespace().map(Value::from).collect(),
            };
            Value::from(parts)
        }
        "replace" => {
            let (old, new, count): (String, String, Option<i64>) = from_args(args)?;
            match count.filter(|&c| c >= 0) {
                Some(c) => Value::from(s.replacen(old.as_str(), new.as_str(), c as usize)),
                None => Value::from(s.replace(old.as_str(), new.as_str())),
            }
        }
        "find" => {
            let (sub,): (String,) = from_args(args)?;
            Value::from(s.find(sub.as_str()).map_or(-1, |b| s[..b].chars().count() as i64))
        }
        "count" => {
            let (sub,): (String,) = from_args(args)?;
            Value::from(if sub.is_empty() {
                s.chars().count() + 1
            } else {
                s.matches(sub.as_str()).count()
            })
        }
        "join" => {
            let (items,): (Value,) = from_args(args)?;
            let parts: Vec<String> = items.try_iter()?.map(|v| v.to_string()).collect();
            Value::from(parts.join(s))
        }
        "isspace" => Value::from(!s.is_empty() && s.chars().all(char::is_whitespace)),
        "isdigit" => Value::from(!s.is_empty() && s.chars().all(|c| c.is_ascii_digit())),
        _ => return Err(Error::from(ErrorKind::UnknownMethod)),
    })
}
