//! Completion options as the binding receives them, and their translation into a runtime
//! request and a KV cache size.

use realm_runtime::{GenerateRequest, RequestOptions};

/// The context a completion may use when the caller does not say: the model's trained context,
/// capped here because the wasm32 heap is at most 4 GiB and the KV cache lives in it.
pub const DEFAULT_MAX_CONTEXT: usize = 4096;

/// Options of one completion: the runtime's request options (`None` keeps the runtime's
/// default: llama.cpp's sampling defaults) and the binding's own cache limit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompletionOptions {
    pub request: RequestOptions,
    /// Most positions (prompt + answer) the session may hold.
    pub n_ctx: Option<usize>,
}

impl CompletionOptions {
    /// The KV cache size for a prompt of `prompt_len` tokens: room for the answer and no more,
    /// within the context limit (a prompt past the limit gets the limit, and the session reports
    /// it as too long).
    pub fn context_size(&self, prompt_len: usize, n_ctx_train: usize) -> usize {
        let limit = self.context_limit(n_ctx_train);
        match self.request.max_tokens {
            Some(n) => prompt_len.saturating_add(n).clamp(1, limit),
            None => limit,
        }
    }

    /// The most positions a request may use: `n_ctx`, else [`DEFAULT_MAX_CONTEXT`], within the
    /// trained context.
    pub fn context_limit(&self, n_ctx_train: usize) -> usize {
        self.n_ctx.unwrap_or(DEFAULT_MAX_CONTEXT).clamp(1, n_ctx_train.max(1))
    }

    /// The KV cache to allocate for a request that needs `needed` positions: rounded up to a
    /// multiple of 512 within `limit`, so that the next turns of a conversation fit in it and
    /// reuse it.
    pub fn cache_size(&self, needed: usize, limit: usize) -> usize {
        needed.next_multiple_of(512).min(limit).max(needed)
    }

    /// The runtime request; without `max_tokens` the answer runs until the context is full.
    pub fn request(&self, prompt: Vec<u32>) -> GenerateRequest {
        GenerateRequest::new(prompt, self.request.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_runtimes() {
        let o = CompletionOptions::default();
        let r = o.request(vec![1, 2]);
        assert_eq!(r.options.sampling(), realm_runtime::SamplingParams::default());
        assert_eq!(r.options.max_tokens, None);
        assert!(r.options.stop.is_empty());
    }

    #[test]
    fn greedy_when_temperature_is_zero() {
        let request =
            RequestOptions { temperature: Some(0.0), seed: Some(7), ..Default::default() };
        let o = CompletionOptions { request, ..Default::default() };
        let r = o.request(vec![1]);
        assert!(r.options.sampling().is_greedy());
        assert_eq!(r.options.sampling().seed, 7);
    }

    #[test]
    fn context_fits_the_answer_within_the_limits() {
        let request = RequestOptions { max_tokens: Some(32), ..Default::default() };
        let o = CompletionOptions { request, ..Default::default() };
        assert_eq!(o.context_size(20, 8192), 52);
        assert_eq!(o.context_size(5000, 8192), DEFAULT_MAX_CONTEXT);
        assert_eq!(o.context_size(20, 40), 40);
        let open = CompletionOptions { n_ctx: Some(100_000), ..Default::default() };
        assert_eq!(open.context_size(20, 8192), 8192);
        assert_eq!(CompletionOptions::default().context_size(0, 0), 1);
    }

    #[test]
    fn caches_grow_in_steps_within_the_limit() {
        let o = CompletionOptions::default();
        assert_eq!(o.context_limit(8192), DEFAULT_MAX_CONTEXT);
        assert_eq!(o.context_limit(2048), 2048);
        assert_eq!(o.cache_size(52, 4096), 512);
        assert_eq!(o.cache_size(512, 4096), 512);
        assert_eq!(o.cache_size(513, 4096), 1024);
        assert_eq!(o.cache_size(4000, 4096), 4096);
        assert_eq!(o.cache_size(40, 40), 40);
    }
}
