//! Chat templates: built-in formats against llama.cpp's expectations, and the Jinja path.
//!
//! Template sources and expected outputs are test vectors from llama.cpp
//! `tests/test-chat-template.cpp` (`expected_output` is its legacy, non-Jinja renderer; where its
//! `expected_output_jinja` is empty the Hugging Face rendering is the same text).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use realm_tokenizer::{BuiltinTemplate, ChatMessage, ChatTemplate, TokenizerError};

fn conversation() -> Vec<ChatMessage> {
    vec![
        ChatMessage::system("You are a helpful assistant"),
        ChatMessage::user("Hello"),
        ChatMessage::assistant("Hi there"),
        ChatMessage::user("Who are you"),
        ChatMessage::assistant("   I am an assistant   "),
        ChatMessage::user("Another question"),
    ]
}

struct Case {
    name: &'static str,
    template: &'static str,
    builtin: BuiltinTemplate,
    legacy: &'static str,
    /// The Hugging Face (Jinja) rendering, when the test can check it: (bos, eos, text).
    jinja: Option<(&'static str, &'static str, &'static str)>,
}

const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const CHATML_OUT: &str = "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n<|im_start|>assistant\n";
const MISTRAL_V02: &str = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";
const VIGOGNE: &str = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% elif true == true and not '<<SYS>>' in messages[0]['content'] %}{% set loop_messages = messages %}{% set system_message = 'Vous êtes Vigogne, un assistant IA créé par Zaion Lab. Vous suivez extrêmement bien les instructions. Aidez autant que vous le pouvez.' %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'system' %}{{ '<<SYS>>\\n' + content.strip() + '\\n<</SYS>>\\n\\n' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";
const MONARCH: &str = "{% for message in messages %}{{bos_token + message['role'] + '\\n' + message['content'] + eos_token + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ bos_token + 'assistant\\n' }}{% endif %}";
const GEMMA: &str = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}";
const DEEPSEEK_CODER: &str = "{% if not add_generation_prompt is defined %}\n{% set add_generation_prompt = false %}\n{% endif %}\n{%- set ns = namespace(found=false) -%}\n{%- for message in messages -%}\n    {%- if message['role'] == 'system' -%}\n        {%- set ns.found = true -%}\n    {%- endif -%}\n{%- endfor -%}\n{{bos_token}}{%- if not ns.found -%}\n{{'You are an AI programming assistant, utilizing the Deepseek Coder model, developed by Deepseek Company, and you only answer questions related to computer science. For politically sensitive questions, security and privacy issues, and other non-computer science questions, you will refuse to answer\\n'}}\n{%- endif %}\n{%- for message in messages %}\n    {%- if message['role'] == 'system' %}\n{{ message['content'] }}\n    {%- else %}\n        {%- if message['role'] == 'user' %}\n{{'### Instruction:\\n' + message['content'] + '\\n'}}\n        {%- else %}\n{{'### Response:\\n' + message['content'] + '\\n<|EOT|>\\n'}}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n{% if add_generation_prompt %}\n{{'### Response:'}}\n{% endif %}";
const DEEPSEEK_CODER_OUT: &str = "You are a helpful assistant### Instruction:\nHello\n### Response:\nHi there\n<|EOT|>\n### Instruction:\nWho are you\n### Response:\n   I am an assistant   \n<|EOT|>\n### Instruction:\nAnother question\n### Response:\n";
const VICUNA: &str = "{%- for message in messages %}{%- if message['role'] == 'system' -%}{{- '' + message['content'] + '\n\n' -}}{%- else -%}{%- if message['role'] == 'user' -%}{{-'USER: ' + message['content'] + '\n'-}}{%- else -%}{{-'ASSISTANT: ' + message['content'] + '</s>\n' -}}{%- endif -%}{%- endif -%}{%- endfor -%}{%- if add_generation_prompt -%}{{-'ASSISTANT:'-}}{%- endif -%}";
const VICUNA_OUT: &str = "You are a helpful assistant\n\nUSER: Hello\nASSISTANT: Hi there</s>\nUSER: Who are you\nASSISTANT:    I am an assistant   </s>\nUSER: Another question\nASSISTANT:";
const COMMAND_R: &str = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% elif false == true %}{% set loop_messages = messages %}{% set system_message = 'You are Command-R, a brilliant, sophisticated, AI-assistant trained to assist human users by providing thorough responses. You are trained by Cohere.' %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% if system_message != false %}{{ '<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>' + system_message + '<|END_OF_TURN_TOKEN|>' }}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% set content = message['content'] %}{% if message['role'] == 'user' %}{{ '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' + content.strip() + '<|END_OF_TURN_TOKEN|>' }}{% elif message['role'] == 'assistant' %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>'  + content.strip() + '<|END_OF_TURN_TOKEN|>' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' }}{% endif %}";
const COMMAND_R_OUT: &str = "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are a helpful assistant<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hello<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>Hi there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Who are you<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>I am an assistant<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Another question<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>";
const LLAMA3: &str = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}";
const LLAMA3_OUT: &str = "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
const PHI3_SMALL: &str = "{{ bos_token }}{% for message in messages %}{{'<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}";
const PHI3_OUT: &str = "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n<|user|>\nWho are you<|end|>\n<|assistant|>\n   I am an assistant   <|end|>\n<|user|>\nAnother question<|end|>\n<|assistant|>\n";

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "chatml",
            template: CHATML,
            builtin: BuiltinTemplate::ChatMl,
            legacy: CHATML_OUT,
            jinja: Some(("", "", CHATML_OUT)),
        },
        Case {
            name: "mistral v0.2",
            template: MISTRAL_V02,
            builtin: BuiltinTemplate::Llama2,
            legacy: "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an assistant   </s>[INST] Another question [/INST]",
            jinja: None, // raises: a system message
        },
        Case {
            name: "vigogne",
            template: VIGOGNE,
            builtin: BuiltinTemplate::Llama2SysStrip,
            legacy: "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>[INST] Who are you [/INST]I am an assistant</s>[INST] Another question [/INST]",
            jinja: Some((
                "",
                "</s>",
                "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s>[INST] Who are you [/INST] I am an assistant </s>[INST] Another question [/INST]",
            )),
        },
        Case {
            name: "monarch",
            template: MONARCH,
            builtin: BuiltinTemplate::Monarch,
            legacy: "system\nYou are a helpful assistant</s>\n<s>user\nHello</s>\n<s>assistant\nHi there</s>\n<s>user\nWho are you</s>\n<s>assistant\n   I am an assistant   </s>\n<s>user\nAnother question</s>\n<s>assistant\n",
            jinja: Some((
                "<s>",
                "</s>",
                "<s>system\nYou are a helpful assistant</s>\n<s>user\nHello</s>\n<s>assistant\nHi there</s>\n<s>user\nWho are you</s>\n<s>assistant\n   I am an assistant   </s>\n<s>user\nAnother question</s>\n<s>assistant\n",
            )),
        },
        Case {
            name: "gemma",
            template: GEMMA,
            builtin: BuiltinTemplate::Gemma,
            legacy: "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\nI am an assistant<end_of_turn>\n<start_of_turn>user\nAnother question<end_of_turn>\n<start_of_turn>model\n",
            jinja: None, // raises: a system message
        },
        Case {
            name: "deepseek coder",
            template: DEEPSEEK_CODER,
            builtin: BuiltinTemplate::Deepseek,
            legacy: DEEPSEEK_CODER_OUT,
            jinja: Some(("", "", DEEPSEEK_CODER_OUT)),
        },
        Case {
            name: "vicuna",
            template: VICUNA,
            builtin: BuiltinTemplate::Vicuna,
            legacy: VICUNA_OUT,
            jinja: Some(("", "", VICUNA_OUT)),
        },
        Case {
            name: "command-r",
            template: COMMAND_R,
            builtin: BuiltinTemplate::CommandR,
            legacy: COMMAND_R_OUT,
            jinja: Some(("", "", COMMAND_R_OUT)),
        },
        Case {
            name: "llama3",
            template: LLAMA3,
            builtin: BuiltinTemplate::Llama3,
            legacy: LLAMA3_OUT,
            jinja: Some(("", "", LLAMA3_OUT)),
        },
        Case {
            name: "phi3 small",
            template: PHI3_SMALL,
            builtin: BuiltinTemplate::Phi3,
            legacy: PHI3_OUT,
            jinja: Some(("", "", PHI3_OUT)),
        },
    ]
}

#[test]
fn builtin_formats_match_llama_cpp_legacy_renderer() {
    let conv = conversation();
    for c in cases() {
        assert_eq!(BuiltinTemplate::detect(c.template), Some(c.builtin), "{}: detection", c.name);
        assert_eq!(c.builtin.render(&conv, true), c.legacy, "{}: rendering", c.name);
        assert_eq!(BuiltinTemplate::from_name(c.builtin.name()), Some(c.builtin));
    }
}

#[test]
fn jinja_rendering_matches_hugging_face() {
    let conv = conversation();
    for c in cases() {
        let Some((bos, eos, want)) = c.jinja else { continue };
        let t = ChatTemplate::new(c.template, bos, eos);
        assert_eq!(t.render_jinja(c.template, &conv, true).unwrap(), want, "{}", c.name);
    }
}

#[test]
fn raised_exceptions_are_typed_and_fall_back_to_the_builtin() {
    let conv = conversation();
    let t = ChatTemplate::new(GEMMA, "<bos>", "<eos>");
    match t.render_jinja(GEMMA, &conv, true) {
        Err(TokenizerError::TemplateException { message }) => {
            assert_eq!(message, "System role not supported")
        }
        other => panic!("expected the template's exception, got {other:?}"),
    }
    // render() falls back to llama.cpp's native Gemma format, which merges the system prompt.
    let rendered = t.render(&conv, true).unwrap();
    assert!(
        rendered
            .starts_with("<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>")
    );
    // Without the system message the template itself renders.
    assert_eq!(
        t.render(&conv[1..], false).unwrap(),
        t.render_jinja(GEMMA, &conv[1..], false).unwrap()
    );
}

#[test]
fn unknown_template_without_fallback_is_an_error() {
    let t = ChatTemplate::new("{{ raise_exception('nope') }}", "", "");
    assert!(t.builtin().is_none());
    assert!(matches!(
        t.render(&conversation(), true),
        Err(TokenizerError::TemplateException { .. })
    ));
    let t = ChatTemplate::new("{% for %}", "", "");
    assert!(matches!(t.render(&conversation(), true), Err(TokenizerError::ChatTemplate { .. })));
}

#[test]
fn python_string_and_dict_methods() {
    let src = "{{ '  Hi  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ 'a,b,c'.split(',') | join('+') }}|\
               {{ 'a b  c'.split() | length }}|{{ 'hello world'.title() }}|{{ 'Up'.upper() }}{{ 'Up'.lower() }}|\
               {{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}|{{ 'aXbX'.replace('X', '-') }}|\
               {% for k, v in {'k': 1}.items() %}{{ k }}={{ v }}{% endfor %}|{{ {'a': 2}.get('b', 7) }}|\
               {{ '-'.join(['p', 'q']) }}";
    let t = ChatTemplate::new(src, "", "");
    let out = t.render_jinja(src, &[], false).unwrap();
    assert_eq!(out, "Hi|hi|a+b+c|3|Hello World|UPup|TrueTrue|a-b-|k=1|7|p-q");
}

#[test]
fn loop_controls_and_block_trimming_like_hugging_face() {
    let src = "{% for m in messages %}\n  {% if loop.index > 2 %}{% break %}{% endif %}\n{{ m.role }};\n{% endfor %}";
    let t = ChatTemplate::new(src, "", "");
    assert_eq!(t.render_jinja(src, &conversation(), false).unwrap(), "system;\nuser;\n");
}

#[test]
fn builtin_generation_prompts() {
    let msgs = [ChatMessage::user("Hi")];
    let render = |t: BuiltinTemplate| t.render(&msgs, true);
    assert_eq!(
        render(BuiltinTemplate::ChatMl),
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        render(BuiltinTemplate::Gemma),
        "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    );
    assert_eq!(
        render(BuiltinTemplate::Llama3),
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    assert_eq!(render(BuiltinTemplate::MistralV7), "[INST] Hi[/INST]");
    assert_eq!(render(BuiltinTemplate::MistralV3Tekken), "[INST]Hi[/INST]");
    assert_eq!(
        render(BuiltinTemplate::Phi4),
        "<|im_start|>user<|im_sep|>Hi<|im_end|><|im_start|>assistant<|im_sep|>"
    );
    assert_eq!(render(BuiltinTemplate::ChatGlm4), "[gMASK]<sop><|user|>\nHi<|assistant|>\n");
}
