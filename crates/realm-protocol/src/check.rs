//! Range checks of a request's fields. Each failure names the field (`param`), as OpenAI's
//! 400s do; the server answers it before anything is queued.

use crate::openai::{ChatCompletionRequest, CompletionRequest, Content, Prompt, Sampling, Stop};
use crate::responses::{ResponseInput, ResponseRequest};

/// A field with a value out of range, or a combination that is not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub param: String,
    pub message: String,
}

impl FieldError {
    pub fn new(param: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { param: param.into(), message: message.into() }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.param, self.message)
    }
}

impl std::error::Error for FieldError {}

/// The server's limits that a request's fields are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most choices per request (`n`, and prompts × `n` for completions).
    pub max_choices: u32,
    /// Most messages in a chat request.
    pub max_messages: usize,
    /// Most stop strings, and the longest one in bytes.
    pub max_stop: usize,
    pub max_stop_bytes: usize,
    /// Most alternatives per token in logprobs.
    pub max_logprobs: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_choices: 16,
            max_messages: 4096,
            max_stop: 16,
            max_stop_bytes: 256,
            max_logprobs: 20,
        }
    }
}

type Checked = Result<(), FieldError>;

fn range(param: &str, v: Option<f32>, lo: f32, hi: f32, lo_open: bool) -> Checked {
    match v {
        Some(x) if !x.is_finite() || x > hi || x < lo || (lo_open && x == lo) => {
            let open = if lo_open { "(" } else { "[" };
            Err(FieldError::new(param, format!("{x} is out of range {open}{lo}, {hi}]")))
        }
        _ => Ok(()),
    }
}

fn sampling(s: &Sampling) -> Checked {
    range("temperature", s.temperature, 0.0, 2.0, false)?;
    range("top_p", s.top_p, 0.0, 1.0, true)?;
    range("frequency_penalty", s.frequency_penalty, -2.0, 2.0, false)?;
    range("presence_penalty", s.presence_penalty, -2.0, 2.0, false)?;
    range("min_p", s.min_p, 0.0, 1.0, false)?;
    range("repeat_penalty", s.repeat_penalty, 0.0, 10.0, true)?;
    Ok(())
}

fn choices(param: &str, n: Option<u32>, prompts: usize, l: &Limits) -> Checked {
    let n = n.unwrap_or(1);
    if n == 0 {
        return Err(FieldError::new(param, "must be at least 1"));
    }
    if u64::from(n) * prompts as u64 > u64::from(l.max_choices) {
        return Err(FieldError::new(
            param,
            format!(
                "{n} choices × {prompts} prompts is more than this server's {} per request",
                l.max_choices
            ),
        ));
    }
    Ok(())
}

fn stop(s: &Option<Stop>, l: &Limits) -> Checked {
    let v: &[String] = match s {
        None => &[],
        Some(Stop::One(s)) => std::slice::from_ref(s),
        Some(Stop::Many(v)) => v,
    };
    if v.len() > l.max_stop {
        return Err(FieldError::new(
            "stop",
            format!("{} strings (at most {})", v.len(), l.max_stop),
        ));
    }
    for (i, s) in v.iter().enumerate() {
        if s.is_empty() || s.len() > l.max_stop_bytes {
            return Err(FieldError::new(
                format!("stop[{i}]"),
                format!("{} bytes (1 to {})", s.len(), l.max_stop_bytes),
            ));
        }
    }
    Ok(())
}

impl ChatCompletionRequest {
    /// Checks every field against `l`.
    pub fn check(&self, l: &Limits) -> Checked {
        if self.messages.is_empty() {
            return Err(FieldError::new("messages", "at least one message is required"));
        }
        if self.messages.len() > l.max_messages {
            return Err(FieldError::new(
                "messages",
                format!("{} messages (at most {})", self.messages.len(), l.max_messages),
            ));
        }
        for (i, m) in self.messages.iter().enumerate() {
            if !matches!(m.role.as_str(), "system" | "developer" | "user" | "assistant") {
                return Err(FieldError::new(
                    format!("messages[{i}].role"),
                    format!("'{}' is not served (system, developer, user, assistant)", m.role),
                ));
            }
            if let Some(Content::Parts(parts)) = &m.content {
                for (j, p) in parts.iter().enumerate() {
                    if p.kind != "text" || p.text.is_none() {
                        return Err(FieldError::new(
                            format!("messages[{i}].content[{j}]"),
                            format!("only text parts are served, not '{}'", p.kind),
                        ));
                    }
                }
            }
        }
        sampling(&self.sampling())?;
        choices("n", self.n, 1, l)?;
        stop(&self.stop, l)?;
        if let Some(k) = self.top_logprobs {
            if k > l.max_logprobs {
                return Err(FieldError::new(
                    "top_logprobs",
                    format!("{k} (at most {})", l.max_logprobs),
                ));
            }
            if self.logprobs != Some(true) {
                return Err(FieldError::new("top_logprobs", "needs logprobs: true"));
            }
        }
        Ok(())
    }

    /// The answer's token limit: `max_completion_tokens`, else `max_tokens`.
    pub fn max_answer_tokens(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// The messages' text: a string, or its text parts joined.
    pub fn message_text(content: &Option<Content>) -> String {
        match content {
            None => String::new(),
            Some(Content::Text(s)) => s.clone(),
            Some(Content::Parts(p)) => p.iter().filter_map(|p| p.text.as_deref()).collect(),
        }
    }
}

impl ResponseRequest {
    /// Checks every field against `l`.
    pub fn check(&self, l: &Limits) -> Checked {
        match &self.input {
            None => return Err(FieldError::new("input", "an input is required")),
            Some(ResponseInput::Items(items)) => {
                if items.is_empty() {
                    return Err(FieldError::new("input", "an empty list of input items"));
                }
                if items.len() > l.max_messages {
                    return Err(FieldError::new(
                        "input",
                        format!("{} items (at most {})", items.len(), l.max_messages),
                    ));
                }
                for (i, m) in items.iter().enumerate() {
                    if m.kind.as_deref().is_some_and(|k| k != "message") {
                        return Err(FieldError::new(
                            format!("input[{i}].type"),
                            "only message items are served",
                        ));
                    }
                    if !matches!(m.role.as_str(), "system" | "developer" | "user" | "assistant") {
                        return Err(FieldError::new(
                            format!("input[{i}].role"),
                            format!("'{}' is not served", m.role),
                        ));
                    }
                    if let Some(Content::Parts(parts)) = &m.content {
                        for (j, p) in parts.iter().enumerate() {
                            if !matches!(p.kind.as_str(), "input_text" | "output_text" | "text")
                                || p.text.is_none()
                            {
                                return Err(FieldError::new(
                                    format!("input[{i}].content[{j}]"),
                                    format!("only text parts are served, not '{}'", p.kind),
                                ));
                            }
                        }
                    }
                }
            }
            Some(ResponseInput::Text(_)) => {}
        }
        sampling(&self.sampling())
    }
}

impl CompletionRequest {
    /// Checks every field against `l`.
    pub fn check(&self, l: &Limits) -> Checked {
        let prompts = match &self.prompt {
            None => return Err(FieldError::new("prompt", "a prompt is required")),
            Some(Prompt::Tokens(v)) if v.is_empty() => 0,
            Some(Prompt::Text(_) | Prompt::Tokens(_)) => 1,
            Some(Prompt::Texts(v)) => v.len(),
            Some(Prompt::TokenLists(v)) => v.len(),
        };
        if prompts == 0 {
            return Err(FieldError::new("prompt", "an empty list of prompts"));
        }
        sampling(&self.sampling())?;
        choices("n", self.n, prompts, l)?;
        stop(&self.stop, l)?;
        if let Some(k) = self.logprobs.filter(|&k| k > l.max_logprobs) {
            return Err(FieldError::new("logprobs", format!("{k} (at most {})", l.max_logprobs)));
        }
        if self.best_of.is_some_and(|b| b != self.n.unwrap_or(1)) {
            return Err(FieldError::new("best_of", "only best_of = n is served"));
        }
        if self.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(FieldError::new("suffix", "suffix (fill-in-the-middle) is not served"));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::openai::ChatMessage;

    fn chat(json: &str) -> ChatCompletionRequest {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn fields_out_of_range_are_named() {
        let l = Limits::default();
        let ok = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]"#;
        assert_eq!(chat(&format!("{ok}}}")).check(&l), Ok(()));
        for (extra, param) in [
            (r#","temperature":3"#, "temperature"),
            (r#","top_p":0"#, "top_p"),
            (r#","n":0"#, "n"),
            (r#","n":17"#, "n"),
            (r#","presence_penalty":-2.5"#, "presence_penalty"),
            (r#","stop":[""]"#, "stop[0]"),
            (r#","top_logprobs":3"#, "top_logprobs"),
            (r#","logprobs":true,"top_logprobs":21"#, "top_logprobs"),
        ] {
            let e = chat(&format!("{ok}{extra}}}")).check(&l).unwrap_err();
            assert_eq!(e.param, param, "{extra}");
        }
        let mut r = chat(&format!("{ok}}}"));
        r.messages.push(ChatMessage { role: "tool".into(), ..Default::default() });
        assert_eq!(r.check(&l).unwrap_err().param, "messages[1].role");
        let parts = r#"{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#;
        assert_eq!(chat(parts).check(&l).unwrap_err().param, "messages[0].content[0]");
        // Unknown fields are ignored, as OpenAI does.
        assert_eq!(chat(&format!("{ok},\"frobnicate\":1}}")).check(&l), Ok(()));
    }

    #[test]
    fn completion_prompts_and_choices() {
        let l = Limits::default();
        let c = |j: &str| serde_json::from_str::<CompletionRequest>(j).unwrap();
        assert_eq!(c(r#"{"prompt":"a"}"#).check(&l), Ok(()));
        assert_eq!(c(r#"{"prompt":[1,2,3]}"#).prompt, Some(Prompt::Tokens(vec![1, 2, 3])));
        assert_eq!(c(r#"{"prompt":["a","b"],"n":8}"#).check(&l), Ok(()));
        assert_eq!(c(r#"{"prompt":["a","b"],"n":9}"#).check(&l).unwrap_err().param, "n");
        assert_eq!(c(r#"{}"#).check(&l).unwrap_err().param, "prompt");
        assert_eq!(c(r#"{"prompt":[]}"#).check(&l).unwrap_err().param, "prompt");
        assert_eq!(c(r#"{"prompt":"a","best_of":3}"#).check(&l).unwrap_err().param, "best_of");
    }
}
