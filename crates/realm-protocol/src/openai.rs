//! The OpenAI-compatible HTTP surface: requests as OpenAI's clients send them (unknown fields
//! are ignored, as OpenAI does), responses and stream chunks as they parse them.

use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// Requests

/// Defines a request struct with the sampling fields common to chat and completions
/// (OpenAI's, then llama-server's extensions) after its own, and `sampling()` to read them as
/// one [`Sampling`]. (Not `#[serde(flatten)]`: that would lose the field's name in type errors.)
macro_rules! with_sampling {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident: $t:ty,)* }) => {
        $(#[$m])*
        pub struct $name {
            $($(#[$fm])* pub $f: $t,)*
            pub temperature: Option<f32>,
            pub top_p: Option<f32>,
            pub frequency_penalty: Option<f32>,
            pub presence_penalty: Option<f32>,
            /// The sampler's seed; without one (or with a negative one, llama.cpp's `-1`)
            /// each request gets a random seed.
            pub seed: Option<i64>,
            /// Extensions (llama-server's names).
            pub top_k: Option<u32>,
            pub min_p: Option<f32>,
            pub repeat_penalty: Option<f32>,
            pub repeat_last_n: Option<u32>,
            /// Keep generating past end-of-generation tokens (llama-server's `ignore_eos`).
            pub ignore_eos: Option<bool>,
            /// Structured output: OpenAI's `response_format` (`text`, `json_object`,
            /// `json_schema`).
            pub response_format: Option<ResponseFormat>,
            /// Extensions, at most one of them and not with a `response_format` other than
            /// `text`: a GBNF grammar (llama-server's `grammar`), a JSON schema
            /// (llama-server's `json_schema`), a regular expression the whole answer matches,
            /// a grammar in llguidance's Lark dialect.
            pub grammar: Option<String>,
            pub json_schema: Option<serde_json::Value>,
            pub regex: Option<String>,
            pub lark: Option<String>,
        }

        impl $name {
            /// The structured-output fields.
            pub fn constraint(&self) -> ConstraintFields<'_> {
                ConstraintFields {
                    response_format: self.response_format.as_ref(),
                    grammar: self.grammar.as_deref(),
                    json_schema: self.json_schema.as_ref(),
                    regex: self.regex.as_deref(),
                    lark: self.lark.as_deref(),
                }
            }

            /// The sampling fields.
            pub fn sampling(&self) -> Sampling {
                Sampling {
                    temperature: self.temperature,
                    top_p: self.top_p,
                    frequency_penalty: self.frequency_penalty,
                    presence_penalty: self.presence_penalty,
                    seed: self.seed,
                    top_k: self.top_k,
                    min_p: self.min_p,
                    repeat_penalty: self.repeat_penalty,
                    repeat_last_n: self.repeat_last_n,
                    ignore_eos: self.ignore_eos,
                }
            }
        }
    };
}

with_sampling! {
/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default)]
pub struct ChatCompletionRequest {
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    /// Most tokens to generate per choice (`max_completion_tokens` wins when both are given).
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub stop: Option<Stop>,
    /// Choices to generate (batched together; each its own seed, `seed + i`).
    pub n: Option<u32>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<u32>,
    pub user: Option<String>,
}
}

with_sampling! {
/// `POST /v1/completions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default)]
pub struct CompletionRequest {
    pub model: Option<String>,
    pub prompt: Option<Prompt>,
    /// Most tokens per choice (OpenAI's default is 16).
    pub max_tokens: Option<u32>,
    pub stop: Option<Stop>,
    pub n: Option<u32>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    /// Log-probabilities of each token and of the `logprobs` most likely alternatives.
    pub logprobs: Option<u32>,
    /// Put the prompt's text before each choice's text.
    pub echo: Option<bool>,
    pub suffix: Option<String>,
    pub best_of: Option<u32>,
    pub user: Option<String>,
}
}

/// OpenAI's `response_format`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// No constraint.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON valid under `json_schema.schema`.
    JsonSchema { json_schema: JsonSchemaFormat },
}

/// `response_format.json_schema` (a response's `text.format` has these fields beside `type`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default)]
pub struct JsonSchemaFormat {
    pub name: Option<String>,
    pub description: Option<String>,
    /// The JSON schema (required).
    pub schema: Option<serde_json::Value>,
    /// Accepted for compatibility: the schema is always followed exactly.
    pub strict: Option<bool>,
}

/// The structured-output fields of a request (see the request types).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ConstraintFields<'a> {
    pub response_format: Option<&'a ResponseFormat>,
    pub grammar: Option<&'a str>,
    pub json_schema: Option<&'a serde_json::Value>,
    pub regex: Option<&'a str>,
    pub lark: Option<&'a str>,
}

/// The sampling fields common to chat and completions: OpenAI's, then llama.cpp's extensions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sampling {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub presence_penalty: Option<f32>,
    /// The sampler's seed; without one (or with a negative one, llama.cpp's `-1`) each request
    /// gets a random seed.
    pub seed: Option<i64>,
    /// Extensions (llama-server's names).
    pub top_k: Option<u32>,
    pub min_p: Option<f32>,
    pub repeat_penalty: Option<f32>,
    pub repeat_last_n: Option<u32>,
    /// Keep generating past end-of-generation tokens (llama-server's `ignore_eos`).
    pub ignore_eos: Option<bool>,
}

/// A chat message: a role and its text (a string or a list of text parts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default)]
pub struct ChatMessage {
    pub role: String,
    pub content: Option<Content>,
    pub name: Option<String>,
}

/// A message's content: a string, or parts (only `{"type": "text", "text": ...}` is served).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
}

/// `stop`: one string or a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

/// A completion's prompt: text, token ids, or a list of either (one choice set per prompt).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    Tokens(Vec<u32>),
    Texts(Vec<String>),
    TokenLists(Vec<Vec<u32>>),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default)]
pub struct StreamOptions {
    /// Send a last chunk with `usage` (and empty `choices`) before `[DONE]`.
    pub include_usage: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Responses

/// Token counts of a request, every choice counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub prompt_tokens_details: PromptTokensDetails,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PromptTokensDetails {
    /// Prompt tokens whose keys and values came from the prefix cache.
    pub cached_tokens: u64,
}

/// Per-request timings, as llama-server reports them (milliseconds), with the queue and the
/// time to first token added.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Timings {
    /// Time waiting before the engine took the request.
    pub queue_ms: f64,
    /// Prompt tokens computed (after the prefix cache) and reused from it.
    pub prompt_n: u64,
    pub cache_n: u64,
    /// From admission to the first token.
    pub prompt_ms: f64,
    pub prompt_per_token_ms: f64,
    pub prompt_per_second: f64,
    /// From the request's arrival to its first token.
    pub ttft_ms: f64,
    /// Generated tokens, and the time from the first to the last.
    pub predicted_n: u64,
    pub predicted_ms: f64,
    pub predicted_per_token_ms: f64,
    pub predicted_per_second: f64,
    /// Times the request was preempted (its KV blocks given to others, then recomputed).
    pub preemptions: u32,
    /// Speculative decoding by prompt lookup (llama-server's names): draft tokens proposed
    /// for this choice, and those accepted (each an answer token that cost no pass of its
    /// own).
    #[serde(default)]
    pub draft_n: u32,
    #[serde(default)]
    pub draft_n_accepted: u32,
}

/// One alternative of a generated token (chat's logprobs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TopLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
}

/// A generated token's log-probability and the most likely alternatives (chat).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
    pub top_logprobs: Vec<TopLogprob>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ChatLogprobs {
    pub content: Vec<TokenLogprob>,
}

/// Log-probabilities in the completions API's layout.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CompletionLogprobs {
    pub tokens: Vec<String>,
    pub token_logprobs: Vec<f32>,
    pub top_logprobs: Vec<std::collections::BTreeMap<String, f32>>,
    pub text_offset: Vec<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AssistantMessage {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ChatChoice {
    pub index: u32,
    pub message: AssistantMessage,
    pub logprobs: Option<ChatLogprobs>,
    /// `stop`, `length` or `cancelled`.
    pub finish_reason: Option<String>,
}

/// A non-streamed chat completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ChatCompletion {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChatChoice>,
    pub usage: Usage,
    pub system_fingerprint: String,
    /// Per choice, in choice order.
    pub timings: Vec<Timings>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ChatDelta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ChatChunkChoice {
    pub index: u32,
    pub delta: ChatDelta,
    pub logprobs: Option<ChatLogprobs>,
    pub finish_reason: Option<String>,
}

/// One chunk of a streamed chat completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ChatCompletionChunk {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: String,
    pub choices: Vec<ChatChunkChoice>,
    /// `null` except in the last chunk when `stream_options.include_usage` was asked for.
    pub usage: Option<Usage>,
    /// With a choice's last chunk: its timings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<Timings>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CompletionChoice {
    pub index: u32,
    pub text: String,
    pub logprobs: Option<CompletionLogprobs>,
    pub finish_reason: Option<String>,
}

/// A completion (`object: "text_completion"`), whole or one stream chunk of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Completion {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: String,
    pub choices: Vec<CompletionChoice>,
    pub usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<Vec<Timings>>,
}

/// `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ModelList {
    pub object: String,
    pub data: Vec<Model>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Model {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub owned_by: String,
    /// Positions one request may use (prompt and answer).
    pub max_model_len: u64,
}

/// `POST /tokenize` (llama-server's shape).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default)]
pub struct TokenizeRequest {
    pub content: String,
    /// Add the model's BOS token where it wants one.
    pub add_special: Option<bool>,
    /// Read special-token text (`<|im_end|>`) as the special token.
    pub parse_special: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TokenizeResponse {
    pub tokens: Vec<u32>,
}

/// `POST /detokenize`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default)]
pub struct DetokenizeRequest {
    pub tokens: Vec<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DetokenizeResponse {
    pub content: String,
}

/// `GET /health`: `ok` (200), `loading` or `draining` (503).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Health {
    pub status: String,
}
