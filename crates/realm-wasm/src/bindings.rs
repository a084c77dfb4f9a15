//! The `Engine` class exported to JS.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use js_sys::{Function, Promise, Uint32Array};
use realm_runtime::{
    BackendKind, DeviceOptions, Engine, EngineOptions, Event, KvDtype, Session, SessionState,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::js;

/// A model loaded on one of this module's backends: the page's GPU (WebGPU through wgpu) or
/// the wasm SIMD CPU engine. Shared with the futures of running generations, so `free()` during
/// one leaves it alive until that generation ends.
#[wasm_bindgen(js_name = Engine)]
pub struct WasmEngine {
    engine: Rc<Engine>,
    /// The last request's KV cache and tokens: the next request reuses their common prefix
    /// (a conversation's earlier turns). Taken while a generation runs.
    kv: Rc<RefCell<Option<SessionState>>>,
}

#[wasm_bindgen(js_class = Engine)]
impl WasmEngine {
    /// Load a GGUF model from bytes already written into wasm memory (`ModelBuffer`), with no
    /// copy: the buffer is consumed. `device` is `"webgpu"` (weights are uploaded to GPU
    /// buffers; the wasm copy is freed once they are) or `"cpu"`. A missing or refused GPU is
    /// a `webgpu-unavailable` error: choosing the CPU instead is the caller's, reported, choice.
    /// `on_upload(bytes_done, total)` follows the weights onto the backend.
    /// `threads`: the CPU engine's threads, the caller's included (more than 1 only in the
    /// threads build, after `startThreads`).
    pub async fn load(
        buffer: ModelBuffer,
        device: String,
        threads: usize,
        on_upload: Function,
    ) -> Result<WasmEngine, JsValue> {
        let backend = match device.as_str() {
            "cpu" => BackendKind::Cpu,
            "webgpu" => BackendKind::Wgpu,
            other => return Err(js::invalid(format!("device must be cpu or webgpu, not {other}"))),
        };
        let threads = threads.max(1);
        let opts = EngineOptions {
            device: DeviceOptions { backend, threads, ..DeviceOptions::default() },
        };
        let total = buffer.bytes.len();
        let done = Cell::new(0usize);
        let uploaded = |_offset: usize, len: usize| {
            done.set(done.get() + len);
            // Progress only: a throwing callback must not fail the load.
            let _ = on_upload.call2(&JsValue::NULL, &done.get().into(), &total.into());
        };
        let engine = Engine::load_bytes_async(buffer.bytes, opts, &uploaded)
            .await
            .map_err(js::runtime_error)?;
        Ok(WasmEngine { engine: Rc::new(engine), kv: Rc::default() })
    }

    /// `llama_tokenize(text, add_special, parse_special)`.
    pub fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        self.engine.tokenizer().tokenize(text, add_special, parse_special)
    }

    pub fn detokenize(&self, ids: &[u32], special: bool) -> String {
        self.engine.tokenizer().detokenize(ids, special)
    }

    /// Render `[{ role, content }]` with the model's chat template, opening the assistant turn.
    #[wasm_bindgen(js_name = applyChatTemplate)]
    pub fn apply_chat_template(&self, messages: &JsValue) -> Result<String, JsValue> {
        let messages = js::chat_messages(messages)?;
        self.engine.chat_template().render(&messages, true).map_err(|e| js::runtime_error(e.into()))
    }

    /// Generate after `prompt` (token ids) with `options` (`max_tokens`, `temperature`, `top_k`,
    /// `top_p`, `min_p`, `seed`, `stop`, `special`, `n_ctx`). `on_token(id, text)` sees each
    /// token (`id` is `undefined` for text flushed at the end); returning `false` stops the
    /// generation (finish reason `cancelled`), and an exception it throws stops it and is
    /// rethrown. Resolves to `{ tokens, text, finish_reason, prompt_tokens, completion_tokens,
    /// reused }` (`reused`: prompt tokens whose KV entries the previous request left). On the GPU
    /// each token's readback is awaited, so the page's event loop runs between tokens.
    pub fn generate(
        &self,
        prompt: Vec<u32>,
        options: &JsValue,
        on_token: Function,
    ) -> Result<Promise, JsValue> {
        let opts = js::completion_options(options)?;
        let engine = Rc::clone(&self.engine);
        let kv = Rc::clone(&self.kv);
        Ok(future_to_promise(async move {
            let train = engine.n_ctx_train();
            let needed = opts.context_size(prompt.len(), train);
            let limit = opts.context_limit(train);
            let kept = kv.borrow_mut().take();
            let mut session = match kept {
                Some(s) if (needed..=limit).contains(&s.n_ctx()) => Session::resume(&engine, s),
                // Sized in steps, so that a conversation's next turns fit the same cache.
                _ => Session::new(&engine, opts.cache_size(needed, limit), KvDtype::F16),
            }
            .map_err(js::runtime_error)?;
            let cancel = AtomicBool::new(false);
            let thrown = RefCell::new(None);
            let deliver = |id: JsValue, text: &str| match on_token.call2(
                &JsValue::NULL,
                &id,
                &JsValue::from_str(text),
            ) {
                Ok(r) if r.as_bool() == Some(false) => cancel.store(true, Ordering::Relaxed),
                Ok(_) => {}
                Err(e) => {
                    cancel.store(true, Ordering::Relaxed);
                    thrown.borrow_mut().get_or_insert(e);
                }
            };
            let n_prompt = prompt.len();
            let out = session
                .generate_async(&opts.request(prompt), Some(&cancel), |ev| match ev {
                    Event::Token { id, text, .. } => deliver(id.into(), text),
                    Event::Flush { text } => deliver(JsValue::UNDEFINED, text),
                })
                .await
                .map_err(js::runtime_error)?;
            // Kept only after a generation that ended normally: an error may have left the
            // device in any state.
            *kv.borrow_mut() = Some(session.into_state());
            if let Some(e) = thrown.into_inner() {
                return Err(e);
            }
            js::object(&[
                ("tokens", Uint32Array::from(out.tokens.as_slice()).into()),
                ("text", out.text.as_str().into()),
                ("finish_reason", out.finish.as_str().into()),
                ("prompt_tokens", n_prompt.into()),
                ("completion_tokens", out.tokens.len().into()),
                ("reused", out.reused.into()),
            ])
        }))
    }

    /// The backend and the code paths it chose, the model's shape, and this module's build.
    pub fn info(&self) -> Result<JsValue, JsValue> {
        let b = self.engine.backend_info();
        let c = self.engine.config();
        let h = &c.hparams;
        js::object(&[
            ("backend", b.name.into()),
            ("device", b.device.as_str().into()),
            ("details", js::strings(&b.details)),
            ("architecture", h.arch.name().into()),
            ("n_vocab", c.n_vocab.into()),
            ("n_layer", h.n_layer.into()),
            ("n_ctx_train", self.engine.n_ctx_train().into()),
            ("build", build_info()?),
        ])
    }
}

/// How this module was compiled: `{ target, simd128, threads, version }`.
#[wasm_bindgen(js_name = buildInfo)]
pub fn build_info() -> Result<JsValue, JsValue> {
    js::object(&[
        ("target", if cfg!(target_arch = "wasm64") { "wasm64" } else { "wasm32" }.into()),
        ("simd128", cfg!(target_feature = "simd128").into()),
        ("threads", cfg!(target_feature = "atomics").into()),
        ("version", env!("CARGO_PKG_VERSION").into()),
    ])
}

/// Model bytes in wasm memory, written by JS while they download (through a view at `ptr`), so
/// the page never holds a second full copy. `Engine.load` takes it over.
#[wasm_bindgen]
pub struct ModelBuffer {
    bytes: Vec<u8>,
}

#[wasm_bindgen]
impl ModelBuffer {
    /// `len` zero bytes; a heap too small for them is `out-of-memory`, not a trap.
    #[wasm_bindgen(constructor)]
    pub fn new(len: usize) -> Result<ModelBuffer, JsValue> {
        let mut b = ModelBuffer { bytes: Vec::new() };
        b.resize(len)?;
        Ok(b)
    }

    /// Grow or shrink to `len` bytes (for downloads of unknown size). `ptr` may move.
    pub fn resize(&mut self, len: usize) -> Result<(), JsValue> {
        if len > self.bytes.len() {
            self.bytes.try_reserve_exact(len - self.bytes.len()).map_err(|_| {
                js::error(
                    "out-of-memory",
                    &format!("no room for the {len}-byte model in wasm memory"),
                )
            })?;
        }
        self.bytes.resize(len, 0);
        Ok(())
    }

    /// Offset of the bytes in the module's memory; valid until the next `resize` or allocation
    /// that grows the memory, so JS makes a fresh view for each write.
    pub fn ptr(&self) -> usize {
        self.bytes.as_ptr() as usize
    }

    #[wasm_bindgen(getter)]
    pub fn length(&self) -> usize {
        self.bytes.len()
    }
}
