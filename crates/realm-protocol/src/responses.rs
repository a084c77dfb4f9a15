//! OpenAI's Responses API, text only (free, JSON or JSON under a schema: `text.format`):
//! `POST /v1/responses` (whole or streamed as typed server-sent events) and its WebSocket mode
//! (`response.create` in, the same events out).

use serde::{Deserialize, Serialize};

use crate::openai::{Content, JsonSchemaFormat, ResponseFormat, Sampling};

/// `POST /v1/responses`, and the body of a WebSocket `response.create` (with `type`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default)]
pub struct ResponseRequest {
    pub model: Option<String>,
    /// A string (one user message) or a list of messages.
    pub input: Option<ResponseInput>,
    /// A system message put before the input.
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    /// The sampler's seed (an extension; random when absent).
    pub seed: Option<i64>,
    pub stream: Option<bool>,
    pub user: Option<String>,
    /// Structured output: `text.format`.
    pub text: Option<TextConfig>,
}

impl ResponseRequest {
    /// The answer's format (`text` when none is given).
    pub fn format(&self) -> TextFormat {
        self.text.as_ref().and_then(|t| t.format.clone()).unwrap_or(TextFormat::Text)
    }

    pub fn sampling(&self) -> Sampling {
        Sampling {
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed,
            ..Sampling::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum ResponseInput {
    Text(String),
    Items(Vec<InputItem>),
}

/// A message of the input (`type` `message` or absent). Its content: a string or parts of
/// type `input_text` / `output_text`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default)]
pub struct InputItem {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub role: String,
    pub content: Option<Content>,
}

/// `text`, in a request and echoed in its response (with the format, `text` by default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default)]
pub struct TextConfig {
    pub format: Option<TextFormat>,
}

/// `text.format`: chat's `response_format` with the JSON schema's fields (`name`, `schema`,
/// `strict`, `description`) beside `type` instead of under `json_schema`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TextFormat {
    /// No constraint.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON valid under `schema` (required).
    JsonSchema(JsonSchemaFormat),
}

impl TextFormat {
    /// The same format as chat's `response_format`.
    pub fn response_format(&self) -> ResponseFormat {
        match self {
            TextFormat::Text => ResponseFormat::Text,
            TextFormat::JsonObject => ResponseFormat::JsonObject,
            TextFormat::JsonSchema(f) => ResponseFormat::JsonSchema { json_schema: f.clone() },
        }
    }
}

/// The response object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ResponseObject {
    pub id: String,
    pub object: String,
    pub created_at: u64,
    /// `in_progress`, `completed`, `incomplete` or `cancelled`.
    pub status: String,
    pub model: String,
    pub output: Vec<OutputMessage>,
    pub usage: Option<ResponseUsage>,
    pub incomplete_details: Option<IncompleteDetails>,
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    /// The request's `text`, its format filled in.
    #[serde(default)]
    pub text: TextConfig,
    pub error: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct IncompleteDetails {
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OutputMessage {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub status: String,
    pub role: String,
    pub content: Vec<OutputText>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OutputText {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
    pub annotations: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ResponseUsage {
    pub input_tokens: u64,
    pub input_tokens_details: InputTokensDetails,
    pub output_tokens: u64,
    pub output_tokens_details: OutputTokensDetails,
    pub total_tokens: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct InputTokensDetails {
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OutputTokensDetails {
    pub reasoning_tokens: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_format_is_flat_and_maps_to_chats_response_format() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
        let body = json!({"input": "x", "text": {"format": {
            "type": "json_schema", "name": "n", "schema": schema, "strict": true,
        }}});
        let req: ResponseRequest = serde_json::from_value(body).unwrap();
        let f = req.format();
        let nested = JsonSchemaFormat {
            name: Some("n".into()),
            description: None,
            schema: Some(schema.clone()),
            strict: Some(true),
        };
        assert_eq!(f.response_format(), ResponseFormat::JsonSchema { json_schema: nested });
        let echoed = serde_json::to_value(TextConfig { format: Some(f) }).unwrap();
        let want = json!({"format": {
            "type": "json_schema", "name": "n", "description": null, "schema": schema, "strict": true,
        }});
        assert_eq!(echoed, want);
    }

    #[test]
    fn text_format_defaults_to_text_and_refuses_unknown_types() {
        assert_eq!(ResponseRequest::default().format(), TextFormat::Text);
        let null: ResponseRequest = serde_json::from_value(json!({"text": {}})).unwrap();
        assert_eq!(null.format(), TextFormat::Text);
        let object: ResponseRequest =
            serde_json::from_value(json!({"text": {"format": {"type": "json_object"}}})).unwrap();
        assert_eq!(object.format().response_format(), ResponseFormat::JsonObject);
        let xml = json!({"text": {"format": {"type": "xml"}}});
        assert!(serde_json::from_value::<ResponseRequest>(xml).is_err());
    }
}
