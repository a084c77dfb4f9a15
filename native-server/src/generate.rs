//! From a wire request to the engine and back, shared by HTTP and the WebSocket: the prompt
//! (chat template or completion text), each choice's [`RequestOptions`], the tenant's limits,
//! the submission of every choice to the [`realm_runtime::Scheduler`], and one stream of the
//! choices' events, recorded in the metrics as they pass. Dropping a [`Generation`] cancels
//! every choice still running: its KV blocks are freed before the engine's next step.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use realm_protocol::{
    ChatCompletionRequest, CompletionRequest, ConstraintFields, ErrorCode, Prompt, ResponseFormat,
    Sampling, Stop, Timings,
};
use realm_runtime::{
    ChatMessage, Completion, ConstraintSpec, GenerateRequest, GrammarError, RequestOptions,
    RuntimeError, SeqEvent,
};
use tokio::sync::mpsc;

use crate::app::{App, Ready};
use crate::auth::{Admission, Tenant};
use crate::error::ApiError;

/// One choice to generate: its prompt, options, and text to put before its answer (`echo`).
pub struct Choice {
    pub prompt: Vec<u32>,
    pub options: RequestOptions,
    pub echo: Option<String>,
}

/// A random 64-bit value (a fresh SipHash key per call).
pub fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish()
}

/// `prefix-` and 24 random hex digits.
pub fn request_id(prefix: &str) -> String {
    format!("{prefix}-{:016x}{:08x}", random_u64(), random_u64() as u32)
}

/// The options every choice shares; the seed is set per choice.
pub fn base_options(
    s: &Sampling,
    stop: &Option<Stop>,
    max_tokens: Option<u32>,
    logprobs: Option<usize>,
    constraint: Option<ConstraintSpec>,
) -> RequestOptions {
    RequestOptions {
        max_tokens: max_tokens.map(|n| n as usize),
        temperature: s.temperature,
        top_k: s.top_k,
        top_p: s.top_p,
        min_p: s.min_p,
        repeat_penalty: s.repeat_penalty,
        presence_penalty: s.presence_penalty,
        frequency_penalty: s.frequency_penalty,
        penalty_last_n: s.repeat_last_n.map(|n| n as usize),
        seed: None,
        stop: stop.clone().map(Stop::into_vec).unwrap_or_default(),
        special_text: false,
        ignore_eog: s.ignore_eos.unwrap_or(false),
        logprobs,
        constraint,
    }
}

/// The fields that errors about a request's format name.
#[derive(Debug, Clone, Copy)]
pub struct FormatField {
    /// The format.
    pub format: &'static str,
    /// Its JSON schema.
    pub schema: &'static str,
}

/// Chat's and completions' `response_format`, its schema under `json_schema`.
pub const RESPONSE_FORMAT: FormatField =
    FormatField { format: "response_format", schema: "response_format.json_schema.schema" };

/// The request's structured-output constraint: at most one way of giving it (an empty
/// string, and `response_format: text`, give none), compiled once here so that an invalid
/// schema or grammar is a 400 naming its field before anything is queued. (Each choice
/// compiles its own copy again when it is submitted: a constraint holds one answer's state.)
pub fn constraint(
    ready: &Ready,
    f: ConstraintFields<'_>,
) -> Result<Option<ConstraintSpec>, ApiError> {
    constraint_at(ready, f, RESPONSE_FORMAT)
}

/// [`constraint`], with the format's errors naming `at` (a response's is `text.format`).
pub fn constraint_at(
    ready: &Ready,
    f: ConstraintFields<'_>,
    at: FormatField,
) -> Result<Option<ConstraintSpec>, ApiError> {
    let mut given: Vec<(&'static str, ConstraintSpec)> = Vec::new();
    match f.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => given.push((at.format, ConstraintSpec::JsonObject)),
        Some(ResponseFormat::JsonSchema { json_schema }) => match &json_schema.schema {
            Some(s) => given.push((at.schema, ConstraintSpec::JsonSchema(s.clone()))),
            None => {
                return Err(ApiError::invalid(at.schema, "a json_schema format needs its schema"));
            }
        },
    }
    let text = |v: Option<&str>| v.filter(|g| !g.is_empty()).map(str::to_owned);
    if let Some(g) = text(f.grammar) {
        given.push(("grammar", ConstraintSpec::Gbnf(g)));
    }
    if let Some(s) = f.json_schema {
        given.push(("json_schema", ConstraintSpec::JsonSchema(s.clone())));
    }
    if let Some(r) = text(f.regex) {
        given.push(("regex", ConstraintSpec::Regex(r)));
    }
    if let Some(l) = text(f.lark) {
        given.push(("lark", ConstraintSpec::Lark(l)));
    }
    if let [(first, _), (second, _), ..] = given.as_slice() {
        return Err(ApiError::invalid(
            *second,
            format!("give one constraint: {first} and {second} were both given"),
        ));
    }
    let Some((param, spec)) = given.pop() else { return Ok(None) };
    let grammars = ready.scheduler.grammars().map_err(ApiError::from)?;
    match grammars.compile(&spec) {
        Ok(_) => Ok(Some(spec)),
        Err(e @ GrammarError::Invalid { .. }) => Err(ApiError::invalid(param, e.to_string())),
        Err(e) => Err(RuntimeError::from(e).into()),
    }
}

/// The answer's token limit under the tenant's cap: the request's, else the cap, else
/// `default` (`None`: until the context is full).
pub fn max_tokens(
    req: Option<u32>,
    tenant: &Tenant,
    default: Option<u32>,
) -> Result<Option<u32>, ApiError> {
    match (req, tenant.max_tokens) {
        (Some(r), Some(cap)) if r > cap => Err(ApiError::invalid(
            "max_tokens",
            format!("{r} is more than this tenant's limit of {cap}"),
        )),
        (Some(r), _) => Ok(Some(r)),
        (None, Some(cap)) => Ok(Some(default.map_or(cap, |d| d.min(cap)))),
        (None, None) => Ok(default),
    }
}

/// Seeds of `n` choices: `seed + i`, from a random seed when none (or a negative one) is given.
pub fn seeds(seed: Option<i64>, n: u32) -> impl Iterator<Item = u64> {
    let base = match seed {
        Some(s) if s >= 0 => s as u64,
        _ => random_u64(),
    };
    (0..u64::from(n)).map(move |i| base.wrapping_add(i))
}

/// The served model's name for `requested`, or 404 / 403.
pub fn check_model(
    ready: &Ready,
    tenant: &Tenant,
    requested: Option<&str>,
) -> Result<(), ApiError> {
    if let Some(m) = requested.filter(|m| !m.is_empty())
        && !ready.names.iter().any(|n| n == m)
    {
        return Err(ApiError {
            param: Some("model".into()),
            ..ApiError::new(
                ErrorCode::ModelNotFound,
                format!(
                    "the model '{m}' is not served here (GET /v1/models lists it: '{}')",
                    ready.names[0]
                ),
            )
        });
    }
    if !tenant.may_use(&ready.names) {
        return Err(ApiError::new(
            ErrorCode::ModelNotAllowed,
            format!("tenant {} may not use the model '{}'", tenant.name, ready.names[0]),
        ));
    }
    Ok(())
}

/// The prompt of a conversation: the model's chat template (a `developer` message is a
/// `system` one), tokenized with its special tokens.
pub fn chat_prompt(ready: &Ready, mut messages: Vec<ChatMessage>) -> Result<Vec<u32>, ApiError> {
    for m in &mut messages {
        if m.role == "developer" {
            m.role = "system".into();
        }
    }
    let text = ready
        .scheduler
        .chat_template()
        .render(&messages, true)
        .map_err(|e| ApiError::invalid("messages", format!("the chat template failed: {e}")))?;
    Ok(ready.scheduler.tokenizer().tokenize(&text, true, true))
}

/// The choices of a chat request: the model's chat template over the messages.
pub fn chat_choices(
    ready: &Ready,
    tenant: &Tenant,
    req: &ChatCompletionRequest,
) -> Result<Vec<Choice>, ApiError> {
    let messages: Vec<ChatMessage> = req
        .messages
        .iter()
        .map(|m| ChatMessage::new(m.role.as_str(), ChatCompletionRequest::message_text(&m.content)))
        .collect();
    let prompt = chat_prompt(ready, messages)?;
    let max = max_tokens(req.max_answer_tokens(), tenant, None)?;
    let logprobs = (req.logprobs == Some(true)).then(|| req.top_logprobs.unwrap_or(0) as usize);
    let base = base_options(
        &req.sampling(),
        &req.stop,
        max,
        logprobs,
        constraint(ready, req.constraint())?,
    );
    let n = req.n.unwrap_or(1);
    Ok(seeds(req.sampling().seed, n)
        .map(|seed| Choice {
            prompt: prompt.clone(),
            options: RequestOptions { seed: Some(seed), ..base.clone() },
            echo: None,
        })
        .collect())
}

/// The choices of a completion request: `n` per prompt, prompt-major (OpenAI's order).
pub fn completion_choices(
    ready: &Ready,
    tenant: &Tenant,
    req: &CompletionRequest,
) -> Result<Vec<Choice>, ApiError> {
    let tok = ready.scheduler.tokenizer();
    let text = |t: &str| tok.tokenize(t, true, true);
    let prompts: Vec<(Vec<u32>, Option<String>)> = match &req.prompt {
        None => Vec::new(),
        Some(Prompt::Text(t)) => vec![(text(t), Some(t.clone()))],
        Some(Prompt::Texts(v)) => v.iter().map(|t| (text(t), Some(t.clone()))).collect(),
        Some(Prompt::Tokens(ids)) => vec![(ids.clone(), None)],
        Some(Prompt::TokenLists(v)) => v.iter().map(|ids| (ids.clone(), None)).collect(),
    };
    let max = max_tokens(req.max_tokens, tenant, Some(16))?;
    let base = base_options(
        &req.sampling(),
        &req.stop,
        max,
        req.logprobs.map(|n| n as usize),
        constraint(ready, req.constraint())?,
    );
    let n = req.n.unwrap_or(1);
    let echo = req.echo == Some(true);
    let mut out = Vec::new();
    for (i, (prompt, prompt_text)) in prompts.into_iter().enumerate() {
        if prompt.is_empty() {
            return Err(ApiError::invalid(format!("prompt[{i}]"), "an empty prompt"));
        }
        let echo = echo.then(|| prompt_text.unwrap_or_else(|| tok.detokenize(&prompt, false)));
        for seed in seeds(req.sampling().seed, n) {
            let options = RequestOptions { seed: Some(seed), ..base.clone() };
            out.push(Choice { prompt: prompt.clone(), options, echo: echo.clone() });
        }
    }
    Ok(out)
}

/// Names `param` as the field of a context-length error (the prompt of a completion, the
/// input of a response; a chat's is `messages`).
pub fn prompt_param(e: ApiError, param: &str) -> ApiError {
    if e.code == ErrorCode::ContextLengthExceeded {
        ApiError { param: Some(param.into()), ..e }
    } else {
        e
    }
}

/// What the two generating endpoints (chat and completions) differ in, over HTTP and the
/// WebSocket alike.
pub trait GenRequest: serde::de::DeserializeOwned {
    /// Chat (`chat.completion` objects) or completions (`text_completion`).
    const CHAT: bool;
    /// The metrics' endpoint label and the id prefix.
    const ENDPOINT: &'static str;
    const ID_PREFIX: &'static str;
    /// The field a context-length error names.
    const PROMPT_PARAM: &'static str;
    /// Every check, then the choices (`n` per prompt).
    fn choices(
        &self,
        ready: &Ready,
        tenant: &Tenant,
        limits: &realm_protocol::Limits,
    ) -> Result<Vec<Choice>, ApiError>;
    fn n(&self) -> u32;
    fn stream(&self) -> bool;
    fn include_usage(&self) -> bool;
    /// The prompt, for `--log-content`.
    fn content(&self) -> String;
}

/// `n`, `stream` and `stream_options`, which chat and completions requests spell alike.
macro_rules! stream_fields {
    () => {
        fn n(&self) -> u32 {
            self.n.unwrap_or(1)
        }
        fn stream(&self) -> bool {
            self.stream == Some(true)
        }
        fn include_usage(&self) -> bool {
            self.stream_options.as_ref().and_then(|o| o.include_usage) == Some(true)
        }
    };
}

impl GenRequest for ChatCompletionRequest {
    const CHAT: bool = true;
    const ENDPOINT: &'static str = "chat_completions";
    const ID_PREFIX: &'static str = "chatcmpl";
    const PROMPT_PARAM: &'static str = "messages";

    fn choices(
        &self,
        ready: &Ready,
        tenant: &Tenant,
        limits: &realm_protocol::Limits,
    ) -> Result<Vec<Choice>, ApiError> {
        self.check(limits)?;
        check_model(ready, tenant, self.model.as_deref())?;
        chat_choices(ready, tenant, self)
    }
    stream_fields!();
    fn content(&self) -> String {
        format!("{:?}", self.messages)
    }
}

impl GenRequest for CompletionRequest {
    const CHAT: bool = false;
    const ENDPOINT: &'static str = "completions";
    const ID_PREFIX: &'static str = "cmpl";
    const PROMPT_PARAM: &'static str = "prompt";

    fn choices(
        &self,
        ready: &Ready,
        tenant: &Tenant,
        limits: &realm_protocol::Limits,
    ) -> Result<Vec<Choice>, ApiError> {
        self.check(limits)?;
        check_model(ready, tenant, self.model.as_deref())?;
        completion_choices(ready, tenant, self)
    }
    stream_fields!();
    fn content(&self) -> String {
        format!("{:?}", self.prompt)
    }
}

/// Checks `req` and starts its choices: the generation and the choices per prompt.
pub fn start_request<R: GenRequest>(
    app: &Arc<App>,
    ready: &Ready,
    tenant: &Arc<Tenant>,
    req: &R,
) -> Result<Generation, ApiError> {
    let choices = req.choices(ready, tenant, &app.settings.limits)?;
    if app.settings.log_content {
        tracing::info!(endpoint = R::ENDPOINT, prompt = %req.content(), "request content");
    }
    Generation::start(app, ready, tenant.clone(), choices)
        .map_err(|e| prompt_param(e, R::PROMPT_PARAM))
}

/// A request's choices running in the engine: their events, merged, in order per choice.
pub struct Generation {
    rx: mpsc::Receiver<(u32, SeqEvent)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    cancel: Canceller,
    app: Arc<App>,
    pub tenant: Arc<Tenant>,
    pub n: u32,
    pub prompt_tokens: Vec<usize>,
    pub echo: Vec<Option<String>>,
    /// When each choice's last token came (seconds since submit), for inter-token latency.
    last_token: Vec<Option<f64>>,
    /// Choices whose last event was taken.
    ended: Vec<bool>,
    _admission: Admission,
}

/// Cancels a [`Generation`]'s choices (a WebSocket `cancel`, the end of a drain).
#[derive(Clone)]
pub struct Canceller(Arc<tokio::sync::watch::Sender<bool>>);

impl Canceller {
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }
}

/// Events buffered per choice between the engine and the connection's writer.
const CHOICE_BUFFER: usize = 64;

impl Generation {
    /// Admits the request under the tenant's limits and submits every choice. A request that
    /// cannot be queued is refused whole (the choices already submitted are cancelled).
    pub fn start(
        app: &Arc<App>,
        ready: &Ready,
        tenant: Arc<Tenant>,
        choices: Vec<Choice>,
    ) -> Result<Generation, ApiError> {
        let max_seq = ready.scheduler.max_seq_len();
        let mut cost = 0u64;
        for c in &choices {
            if c.prompt.len() >= max_seq {
                return Err(ApiError {
                    param: Some("messages".into()),
                    ..ApiError::new(
                        ErrorCode::ContextLengthExceeded,
                        format!(
                            "the prompt has {} tokens; this server's context is {max_seq} (prompt and answer)",
                            c.prompt.len()
                        ),
                    )
                });
            }
            let answer = c.options.max_tokens.unwrap_or(max_seq - c.prompt.len());
            cost += (c.prompt.len() + answer.min(max_seq - c.prompt.len())) as u64;
        }
        let admission = tenant.admit(cost).map_err(|(limit, e)| {
            app.metrics
                .rate_limited
                .with_label_values(&[tenant.name.as_str(), limit.as_str()])
                .inc();
            e
        })?;
        let n = choices.len() as u32;
        let (tx, rx) = mpsc::channel(CHOICE_BUFFER * choices.len().max(1));
        let mut handles = Vec::with_capacity(choices.len());
        let prompt_tokens = choices.iter().map(|c| c.prompt.len()).collect();
        let mut echo = Vec::with_capacity(choices.len());
        for c in choices {
            echo.push(c.echo);
            // On an error the handles submitted so far are dropped: cancelled.
            handles.push(ready.scheduler.submit(GenerateRequest::new(c.prompt, c.options))?);
        }
        let cancel = Canceller(Arc::new(tokio::sync::watch::channel(false).0));
        let tasks = handles
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                let tx = tx.clone();
                let mut cancelled = cancel.0.subscribe();
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            // The reader is gone: dropping the handle cancels the choice.
                            () = tx.closed() => break,
                            // Cancelled: the engine ends the choice with finish `cancelled`.
                            Ok(()) = cancelled.changed() => h.cancel(),
                            e = h.next_event() => {
                                let Some(e) = e else { break };
                                let last = matches!(e, SeqEvent::Done(_) | SeqEvent::Failed(_));
                                if tx.send((i as u32, e)).await.is_err() || last {
                                    break;
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        app.in_flight.fetch_add(1, Ordering::AcqRel);
        Ok(Generation {
            rx,
            tasks,
            cancel,
            app: app.clone(),
            tenant,
            n,
            prompt_tokens,
            echo,
            last_token: vec![None; n as usize],
            ended: vec![false; n as usize],
            _admission: admission,
        })
    }

    /// Cancels every choice from anywhere; each ends with `Done` (finish `cancelled`).
    pub fn canceller(&self) -> Canceller {
        self.cancel.clone()
    }

    /// The next event of any choice (`None` when every choice has ended), recorded in the
    /// metrics.
    pub async fn next(&mut self) -> Option<(u32, SeqEvent)> {
        let (i, e) = self.rx.recv().await?;
        if matches!(e, SeqEvent::Done(_) | SeqEvent::Failed(_))
            && let Some(end) = self.ended.get_mut(i as usize)
        {
            *end = true;
        }
        let m = &self.app.metrics;
        let t = [self.tenant.name.as_str()];
        match &e {
            SeqEvent::Started { prompt_tokens, cached_tokens, queue_seconds } => {
                m.queue_time.observe(*queue_seconds);
                m.prompt_tokens.with_label_values(&t).inc_by(*prompt_tokens as u64);
                m.cached_prompt_tokens.with_label_values(&t).inc_by(*cached_tokens as u64);
            }
            SeqEvent::Token { seconds, .. } => {
                m.generation_tokens.with_label_values(&t).inc();
                match self.last_token.get_mut(i as usize) {
                    Some(Some(last)) => {
                        m.itl.observe(seconds - *last);
                        *last = *seconds;
                    }
                    Some(slot) => {
                        m.ttft.observe(*seconds);
                        *slot = Some(*seconds);
                    }
                    None => {}
                }
            }
            SeqEvent::Done(c) => {
                let tm = &c.timings;
                m.finished.with_label_values(&[finish_reason(c), t[0]]).inc();
                m.e2e.observe(tm.total_seconds);
                if !c.tokens.is_empty() {
                    m.prefill_time.observe((tm.first_token_seconds - tm.queue_seconds).max(0.0));
                    m.decode_time.observe((tm.total_seconds - tm.first_token_seconds).max(0.0));
                }
            }
            SeqEvent::Failed(_) => m.finished.with_label_values(&["error", t[0]]).inc(),
            SeqEvent::Flush { .. } | SeqEvent::Preempted => {}
        }
        Some((i, e))
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        // The forwarding tasks drop their handles (cancelling what still runs) when the
        // receiver closes; aborting them makes it immediate.
        for t in &self.tasks {
            t.abort();
        }
        // Choices given up before their end (the client went away) count as cancelled.
        let gone = self.ended.iter().filter(|e| !**e).count() as u64;
        if gone > 0 {
            let m = &self.app.metrics.finished;
            m.with_label_values(&["cancelled", self.tenant.name.as_str()]).inc_by(gone);
        }
        self.app.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// OpenAI's finish reason of a completion.
pub fn finish_reason(c: &Completion) -> &'static str {
    c.finish.as_str()
}

/// llama-server's timings of one finished choice.
pub fn timings(c: &Completion) -> Timings {
    let t = &c.timings;
    let prompt_n = c.prompt_tokens.saturating_sub(c.cached_tokens) as u64;
    let predicted_n = c.tokens.len() as u64;
    let first = if predicted_n > 0 { t.first_token_seconds } else { t.total_seconds };
    let prompt_ms = (first - t.queue_seconds).max(0.0) * 1e3;
    let predicted_ms = (t.total_seconds - first).max(0.0) * 1e3;
    let per = |ms: f64, n: u64| if n > 0 { ms / n as f64 } else { 0.0 };
    let rate = |ms: f64, n: u64| if ms > 0.0 { n as f64 * 1e3 / ms } else { 0.0 };
    // Decode speed counts the intervals between tokens (the first token ends the prompt).
    let intervals = predicted_n.saturating_sub(1);
    Timings {
        queue_ms: t.queue_seconds * 1e3,
        prompt_n,
        cache_n: c.cached_tokens as u64,
        prompt_ms,
        prompt_per_token_ms: per(prompt_ms, prompt_n),
        prompt_per_second: rate(prompt_ms, prompt_n),
        ttft_ms: first * 1e3,
        predicted_n,
        predicted_ms,
        predicted_per_token_ms: per(predicted_ms, intervals),
        predicted_per_second: rate(predicted_ms, intervals),
        preemptions: t.preemptions,
        draft_n: t.draft_tokens,
        draft_n_accepted: t.draft_accepted,
    }
}
