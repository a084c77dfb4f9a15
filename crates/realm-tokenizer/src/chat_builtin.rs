//! llama.cpp's built-in chat formats: detection from a template's text and native rendering.
//!
//! Follows `llm_chat_detect_template` and `llm_chat_apply_template` in llama.cpp
//! `src/llama-chat.cpp` (commit 0c1e57098bba43ac29e6e3b677cdceebdd22334f) for the formats listed
//! in [`BuiltinTemplate`]; formats llama.cpp detects but Realm does not render detect as `None`.

use crate::chat::ChatMessage;

/// A chat format rendered natively (no Jinja).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinTemplate {
    ChatMl,
    Llama2,
    Llama2Sys,
    Llama2SysBos,
    Llama2SysStrip,
    MistralV1,
    MistralV3,
    MistralV3Tekken,
    MistralV7,
    MistralV7Tekken,
    Phi3,
    Phi4,
    Falcon3,
    Zephyr,
    Monarch,
    Gemma,
    Orion,
    OpenChat,
    Vicuna,
    VicunaOrca,
    Deepseek,
    Deepseek2,
    Deepseek3,
    CommandR,
    Llama3,
    ChatGlm4,
    GlmEdge,
    MiniCpm,
    Exaone3,
    Granite,
    Megrez,
    Llama4,
    SmolVlm,
}

use BuiltinTemplate as T;

const NAMES: &[(&str, BuiltinTemplate)] = &[
    ("chatml", T::ChatMl),
    ("llama2", T::Llama2),
    ("llama2-sys", T::Llama2Sys),
    ("llama2-sys-bos", T::Llama2SysBos),
    ("llama2-sys-strip", T::Llama2SysStrip),
    ("mistral-v1", T::MistralV1),
    ("mistral-v3", T::MistralV3),
    ("mistral-v3-tekken", T::MistralV3Tekken),
    ("mistral-v7", T::MistralV7),
    ("mistral-v7-tekken", T::MistralV7Tekken),
    ("phi3", T::Phi3),
    ("phi4", T::Phi4),
    ("falcon3", T::Falcon3),
    ("zephyr", T::Zephyr),
    ("monarch", T::Monarch),
    ("gemma", T::Gemma),
    ("orion", T::Orion),
    ("openchat", T::OpenChat),
    ("vicuna", T::Vicuna),
    ("vicuna-orca", T::VicunaOrca),
    ("deepseek", T::Deepseek),
    ("deepseek2", T::Deepseek2),
    ("deepseek3", T::Deepseek3),
    ("command-r", T::CommandR),
    ("llama3", T::Llama3),
    ("chatglm4", T::ChatGlm4),
    ("glmedge", T::GlmEdge),
    ("minicpm", T::MiniCpm),
    ("exaone3", T::Exaone3),
    ("granite", T::Granite),
    ("megrez", T::Megrez),
    ("llama4", T::Llama4),
    ("smolvlm", T::SmolVlm),
];

/// C-locale `isspace` trim from both ends (llama-chat.cpp `trim`).
fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c == ' ' || ('\t'..='\r').contains(&c))
}

impl BuiltinTemplate {
    /// The format llama.cpp calls `name` (`llm_chat_template_from_str`).
    pub fn from_name(name: &str) -> Option<BuiltinTemplate> {
        NAMES.iter().find(|(n, _)| *n == name).map(|&(_, t)| t)
    }

    /// llama.cpp's name for the format.
    pub fn name(self) -> &'static str {
        NAMES.iter().find(|(_, t)| *t == self).map_or("chatml", |&(n, _)| n)
    }

    /// Recognize a format from a template name or Jinja source (`llm_chat_detect_template`).
    pub fn detect(tmpl: &str) -> Option<BuiltinTemplate> {
        if let Some(t) = BuiltinTemplate::from_name(tmpl) {
            return Some(t);
        }
        let has = |s: &str| tmpl.contains(s);
        if has("<|im_start|>") {
            return Some(if has("<|im_sep|>") {
                T::Phi4
            } else if has("<end_of_utterance>") {
                T::SmolVlm
            } else {
                T::ChatMl
            });
        }
        if tmpl.starts_with("mistral") || has("[INST]") {
            if has("[SYSTEM_PROMPT]") {
                return Some(T::MistralV7);
            }
            if has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]") {
                if has(" [INST]") {
                    return Some(T::MistralV1);
                }
                if has("\"[INST]\"") {
                    return Some(T::MistralV3Tekken);
                }
                return Some(T::MistralV3);
            }
            return Some(if has("content.strip()") {
                T::Llama2SysStrip
            } else if has("bos_token + '[INST]") {
                T::Llama2SysBos
            } else if has("<<SYS>>") {
                T::Llama2Sys
            } else {
                T::Llama2
            });
        }
        let checks: &[(bool, Option<BuiltinTemplate>)] = &[
            (has("<|assistant|>") && has("<|end|>"), Some(T::Phi3)),
            (has("[gMASK]<sop>"), Some(T::ChatGlm4)),
            (
                has("<|assistant|>") && has("<|user|>"),
                Some(if has("</s>") { T::Falcon3 } else { T::GlmEdge }),
            ),
            (has("<|{{ item['role'] }}|>") && has("<|begin_of_image|>"), Some(T::GlmEdge)),
            (has("<|user|>") && has("<|endoftext|>"), Some(T::Zephyr)),
            (has("bos_token + message['role']"), Some(T::Monarch)),
            (has("<start_of_turn>"), Some(T::Gemma)),
            (has("'\\n\\nAssistant: ' + eos_token"), Some(T::Orion)),
            (has("GPT4 Correct "), Some(T::OpenChat)),
            (
                has("USER: ") && has("ASSISTANT: "),
                Some(if has("SYSTEM: ") { T::VicunaOrca } else { T::Vicuna }),
            ),
            (has("### Instruction:") && has("<|EOT|>"), Some(T::Deepseek)),
            (has("<|START_OF_TURN_TOKEN|>") && has("<|USER_TOKEN|>"), Some(T::CommandR)),
            (has("<|start_header_id|>") && has("<|end_header_id|>"), Some(T::Llama3)),
            (has("[gMASK]sop"), None),
            (has("<\u{7528}\u{6237}>"), Some(T::MiniCpm)),
            (has("'Assistant: ' + message['content'] + eos_token"), Some(T::Deepseek2)),
            (
                has("<\u{FF5C}Assistant\u{FF5C}>")
                    && has("<\u{FF5C}User\u{FF5C}>")
                    && has("<\u{FF5C}end\u{2581}of\u{2581}sentence\u{FF5C}>"),
                Some(T::Deepseek3),
            ),
            (
                has("[|system|]") && has("[|assistant|]") && has("[|endofturn|]"),
                if has("[|tool|]") { None } else { Some(T::Exaone3) },
            ),
            (
                has("rwkv-world") || has("{{- 'User: ' + message['content']|trim + '\\n\\n' -}}"),
                None,
            ),
            (has("<|start_of_role|>"), Some(T::Granite)),
            (
                has(
                    "message['role'] + additional_special_tokens[0] + message['content'] + additional_special_tokens[1]",
                ),
                None,
            ),
            (has("<|role_start|>"), Some(T::Megrez)),
            (has("<|header_start|>") && has("<|header_end|>"), Some(T::Llama4)),
        ];
        checks.iter().find(|(hit, _)| *hit).and_then(|&(_, t)| t)
    }

    /// Render like `llm_chat_apply_template`; `add_ass` = add the generation prompt.
    pub fn render(self, chat: &[ChatMessage], add_ass: bool) -> String {
        let mut ss = String::new();
        match self {
            T::ChatMl => {
                for m in chat {
                    ss += &format!("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content);
                }
                if add_ass {
                    ss += "<|im_start|>assistant\n";
                }
            }
            T::MistralV7 | T::MistralV7Tekken => {
                let sp = if self == T::MistralV7 { " " } else { "" };
                for m in chat {
                    match m.role.as_str() {
                        "system" => {
                            ss += &format!("[SYSTEM_PROMPT]{sp}{}[/SYSTEM_PROMPT]", m.content)
                        }
                        "user" => ss += &format!("[INST]{sp}{}[/INST]", m.content),
                        _ => ss += &format!("{sp}{}</s>", m.content),
                    }
                }
            }
            T::MistralV1 | T::MistralV3 | T::MistralV3Tekken => render_mistral(self, chat, &mut ss),
            T::Llama2 | T::Llama2Sys | T::Llama2SysBos | T::Llama2SysStrip => {
                render_llama2(self, chat, &mut ss)
            }
            T::Gemma => render_gemma(chat, add_ass, &mut ss),
            T::Orion => render_orion(chat, &mut ss),
            _ => render_simple(self, chat, add_ass, &mut ss),
        }
        ss
    }
}

fn render_mistral(t: BuiltinTemplate, chat: &[ChatMessage], ss: &mut String) {
    let leading = if t == T::MistralV1 { " " } else { "" };
    let trailing = if t == T::MistralV3Tekken { "" } else { " " };
    let mut inside = false;
    for m in chat {
        if !inside {
            *ss += &format!("{leading}[INST]{trailing}");
            inside = true;
        }
        match m.role.as_str() {
            "system" => *ss += &format!("{}\n\n", m.content),
            "user" => *ss += &format!("{}{leading}[/INST]", m.content),
            _ => {
                let c = if t == T::MistralV3 { trim(&m.content) } else { &m.content };
                *ss += &format!("{trailing}{c}</s>");
                inside = false;
            }
        }
    }
}

fn render_llama2(t: BuiltinTemplate, chat: &[ChatMessage], ss: &mut String) {
    let support_system = t != T::Llama2;
    let bos_inside = t == T::Llama2SysBos;
    let strip = t == T::Llama2SysStrip;
    let mut inside = true;
    *ss += "[INST] ";
    for m in chat {
        let content = if strip { trim(&m.content) } else { &m.content };
        if !inside {
            inside = true;
            *ss += if bos_inside { "<s>[INST] " } else { "[INST] " };
        }
        match m.role.as_str() {
            "system" if support_system => *ss += &format!("<<SYS>>\n{content}\n<</SYS>>\n\n"),
            "system" => *ss += &format!("{content}\n"),
            "user" => *ss += &format!("{content} [/INST]"),
            _ => {
                *ss += &format!("{content}</s>");
                inside = false;
            }
        }
    }
}

fn render_gemma(chat: &[ChatMessage], add_ass: bool, ss: &mut String) {
    let mut system = String::new();
    for m in chat {
        if m.role == "system" {
            system += trim(&m.content);
            continue;
        }
        let role = if m.role == "assistant" { "model" } else { m.role.as_str() };
        *ss += &format!("<start_of_turn>{role}\n");
        if !system.is_empty() && role != "model" {
            *ss += &format!("{system}\n\n");
            system.clear();
        }
        *ss += &format!("{}<end_of_turn>\n", trim(&m.content));
    }
    if add_ass {
        *ss += "<start_of_turn>model\n";
    }
}

fn render_orion(chat: &[ChatMessage], ss: &mut String) {
    let mut system = String::new();
    for m in chat {
        match m.role.as_str() {
            "system" => system += &m.content,
            "user" => {
                *ss += "Human: ";
                if !system.is_empty() {
                    *ss += &format!("{system}\n\n");
                    system.clear();
                }
                *ss += &format!("{}\n\nAssistant: </s>", m.content);
            }
            _ => *ss += &format!("{}</s>", m.content),
        }
    }
}

/// Formats that are one line per message plus an optional generation prompt.
fn render_simple(t: BuiltinTemplate, chat: &[ChatMessage], add_ass: bool, ss: &mut String) {
    for (i, m) in chat.iter().enumerate() {
        let (r, c) = (m.role.as_str(), m.content.as_str());
        let part = match t {
            T::Phi3 => format!("<|{r}|>\n{c}<|end|>\n"),
            T::Phi4 => format!("<|im_start|>{r}<|im_sep|>{c}<|im_end|>"),
            T::Falcon3 => format!("<|{r}|>\n{c}\n"),
            T::Zephyr => format!("<|{r}|>\n{c}<|endoftext|>\n"),
            T::Monarch => format!("{}{r}\n{c}</s>\n", if i == 0 { "" } else { "<s>" }),
            T::OpenChat => match r {
                "system" => format!("{c}<|end_of_turn|>"),
                _ => {
                    let mut role = r.to_string();
                    if let Some(first) = role.get_mut(0..1) {
                        first.make_ascii_uppercase();
                    }
                    format!("GPT4 Correct {role}: {c}<|end_of_turn|>")
                }
            },
            T::Vicuna | T::VicunaOrca => match r {
                "system" if t == T::VicunaOrca => format!("SYSTEM: {c}\n"),
                "system" => format!("{c}\n\n"),
                "user" => format!("USER: {c}\n"),
                "assistant" => format!("ASSISTANT: {c}</s>\n"),
                _ => String::new(),
            },
            T::Deepseek => match r {
                "system" => c.to_string(),
                "user" => format!("### Instruction:\n{c}\n"),
                "assistant" => format!("### Response:\n{c}\n<|EOT|>\n"),
                _ => String::new(),
            },
            T::Deepseek2 => match r {
                "system" => format!("{c}\n\n"),
                "user" => format!("User: {c}\n\n"),
                "assistant" => {
                    format!("Assistant: {c}<\u{FF5C}end\u{2581}of\u{2581}sentence\u{FF5C}>")
                }
                _ => String::new(),
            },
            T::Deepseek3 => match r {
                "system" => format!("{c}\n\n"),
                "user" => format!("<\u{FF5C}User\u{FF5C}>{c}"),
                "assistant" => format!(
                    "<\u{FF5C}Assistant\u{FF5C}>{c}<\u{FF5C}end\u{2581}of\u{2581}sentence\u{FF5C}>"
                ),
                _ => String::new(),
            },
            T::CommandR => match r {
                "system" => format!(
                    "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>{}<|END_OF_TURN_TOKEN|>",
                    trim(c)
                ),
                "user" => {
                    format!("<|START_OF_TURN_TOKEN|><|USER_TOKEN|>{}<|END_OF_TURN_TOKEN|>", trim(c))
                }
                "assistant" => format!(
                    "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>{}<|END_OF_TURN_TOKEN|>",
                    trim(c)
                ),
                _ => String::new(),
            },
            T::Llama3 => {
                format!("<|start_header_id|>{r}<|end_header_id|>\n\n{}<|eot_id|>", trim(c))
            }
            T::Llama4 => format!("<|header_start|>{r}<|header_end|>\n\n{}<|eot|>", trim(c)),
            T::ChatGlm4 | T::GlmEdge => format!("<|{r}|>\n{c}"),
            T::MiniCpm => match r {
                "user" => format!("<\u{7528}\u{6237}>{}<AI>", trim(c)),
                _ => trim(c).to_string(),
            },
            T::Exaone3 => match r {
                "system" => format!("[|system|]{}[|endofturn|]\n", trim(c)),
                "user" => format!("[|user|]{}\n", trim(c)),
                "assistant" => format!("[|assistant|]{}[|endofturn|]\n", trim(c)),
                _ => String::new(),
            },
            T::Granite => {
                let call = if r == "assistant_tool_call" { "<|tool_call|>" } else { "" };
                format!("<|start_of_role|>{r}<|end_of_role|>{call}{c}<|end_of_text|>\n")
            }
            T::Megrez => format!("<|role_start|>{r}<|role_end|>{c}<|turn_end|>"),
            T::SmolVlm => match r {
                "system" => format!("{c}\n\n"),
                "user" => format!("User: {c}<end_of_utterance>\n"),
                _ => format!("Assistant: {c}<end_of_utterance>\n"),
            },
            _ => String::new(),
        };
        if i == 0 {
            *ss += match t {
                T::ChatGlm4 => "[gMASK]<sop>",
                T::SmolVlm => "<|im_start|>",
                _ => "",
            };
        }
        *ss += &part;
    }
    if chat.is_empty() {
        *ss += match t {
            T::ChatGlm4 => "[gMASK]<sop>",
            T::SmolVlm => "<|im_start|>",
            _ => "",
        };
    }
    if add_ass {
        *ss += match t {
            T::Phi3 | T::Falcon3 | T::Zephyr => "<|assistant|>\n",
            T::Phi4 => "<|im_start|>assistant<|im_sep|>",
            T::Monarch => "<s>assistant\n",
            T::OpenChat => "GPT4 Correct Assistant:",
            T::Vicuna | T::VicunaOrca => "ASSISTANT:",
            T::Deepseek => "### Response:\n",
            T::Deepseek2 => "Assistant:",
            T::Deepseek3 => "<\u{FF5C}Assistant\u{FF5C}>",
            T::CommandR => "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>",
            T::Llama3 => "<|start_header_id|>assistant<|end_header_id|>\n\n",
            T::Llama4 => "<|header_start|>assistant<|header_end|>\n\n",
            T::ChatGlm4 => "<|assistant|>\n",
            T::GlmEdge => "<|assistant|>",
            T::Exaone3 => "[|assistant|]",
            T::Granite => "<|start_of_role|>assistant<|end_of_role|>\n",
            T::Megrez => "<|role_start|>assistant<|role_end|>",
            T::SmolVlm => "Assistant:",
            _ => "",
        };
    }
}
