//! `/metrics` in Prometheus' text format, with vLLM's meanings under a `realm_` prefix:
//! requests by endpoint, status and tenant; finished requests by reason; prompt, generated and
//! cached tokens; latency histograms (queue, time to first token, inter-token, prefill,
//! decode, end to end); the engine's running/waiting requests, KV pool use, prefix-cache
//! queries and hits, preemptions; rate-limit rejections; connections; build info.

use std::sync::Mutex;

use prometheus::{
    Counter, Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use realm_runtime::SchedulerStats;

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub finished: IntCounterVec,
    pub prompt_tokens: IntCounterVec,
    pub generation_tokens: IntCounterVec,
    pub cached_prompt_tokens: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub queue_time: Histogram,
    pub ttft: Histogram,
    pub itl: Histogram,
    pub prefill_time: Histogram,
    pub decode_time: Histogram,
    pub e2e: Histogram,
    pub connections: IntGaugeVec,
    running: IntGauge,
    waiting: IntGauge,
    kv_usage: Gauge,
    kv_blocks: IntGauge,
    kv_cached_blocks: IntGauge,
    prefix_queries: IntCounter,
    prefix_hits: IntCounter,
    preemptions: IntCounter,
    engine_steps: IntCounter,
    draft_tokens: IntCounter,
    draft_accepted: IntCounter,
    masks: IntCounter,
    mask_seconds: Counter,
    mask_wait_seconds: Counter,
    refused: IntCounter,
    /// The engine's counters at the last scrape (they are monotonic; the deltas go in).
    last: Mutex<SchedulerStats>,
}

fn counter(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
) -> prometheus::Result<Histogram> {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))?;
    r.register(Box::new(h.clone()))?;
    Ok(h)
}

fn gauge(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn seconds_counter(r: &Registry, name: &str, help: &str) -> prometheus::Result<Counter> {
    let c = Counter::new(name, help)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn plain_counter(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounter> {
    let c = IntCounter::new(name, help)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

/// Latency buckets (seconds): vLLM's for time to first token and request latency.
const LATENCY: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0,
];
/// Inter-token latency buckets (seconds).
const ITL: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
    0.4, 0.5, 0.75, 1.0, 2.5, 5.0,
];

impl Metrics {
    pub fn new(model: &str, backend: &str) -> prometheus::Result<Metrics> {
        let r = Registry::new();
        let build = IntGaugeVec::new(
            Opts::new("realm_build_info", "Build and model of this server (always 1)."),
            &["version", "model", "backend"],
        )?;
        r.register(Box::new(build.clone()))?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION"), model, backend]).set(1);
        let connections = IntGaugeVec::new(
            Opts::new("realm_open_connections", "Open client connections by protocol."),
            &["protocol"],
        )?;
        r.register(Box::new(connections.clone()))?;
        let kv_usage = Gauge::new(
            "realm_kv_cache_usage_perc",
            "Fraction of the KV pool's blocks held by requests (0 to 1).",
        )?;
        r.register(Box::new(kv_usage.clone()))?;
        Ok(Metrics {
            requests: counter(
                &r,
                "realm_requests_total",
                "HTTP and WebSocket requests by endpoint, status and tenant.",
                &["endpoint", "status", "tenant"],
            )?,
            finished: counter(
                &r,
                "realm_request_success_total",
                "Finished generations (choices) by finish reason and tenant.",
                &["finished_reason", "tenant"],
            )?,
            prompt_tokens: counter(
                &r,
                "realm_prompt_tokens_total",
                "Prompt tokens of admitted requests (every choice).",
                &["tenant"],
            )?,
            generation_tokens: counter(
                &r,
                "realm_generation_tokens_total",
                "Generated tokens.",
                &["tenant"],
            )?,
            cached_prompt_tokens: counter(
                &r,
                "realm_prompt_tokens_cached_total",
                "Prompt tokens served from the prefix cache.",
                &["tenant"],
            )?,
            rate_limited: counter(
                &r,
                "realm_rate_limited_total",
                "Requests refused by a tenant limit.",
                &["tenant", "limit"],
            )?,
            queue_time: histogram(
                &r,
                "realm_request_queue_time_seconds",
                "Time requests waited before the engine took them.",
                LATENCY,
            )?,
            ttft: histogram(
                &r,
                "realm_time_to_first_token_seconds",
                "Time from a request's arrival to its first token.",
                LATENCY,
            )?,
            itl: histogram(
                &r,
                "realm_inter_token_latency_seconds",
                "Time between consecutive tokens of a choice.",
                ITL,
            )?,
            prefill_time: histogram(
                &r,
                "realm_request_prefill_time_seconds",
                "Time from admission to the first token.",
                LATENCY,
            )?,
            decode_time: histogram(
                &r,
                "realm_request_decode_time_seconds",
                "Time from the first token to the last.",
                LATENCY,
            )?,
            e2e: histogram(
                &r,
                "realm_e2e_request_latency_seconds",
                "Time from a request's arrival to its end.",
                LATENCY,
            )?,
            connections,
            running: gauge(
                &r,
                "realm_num_requests_running",
                "Sequences holding KV blocks in the engine.",
            )?,
            waiting: gauge(&r, "realm_num_requests_waiting", "Sequences waiting for the engine.")?,
            kv_usage,
            kv_blocks: gauge(&r, "realm_kv_cache_blocks", "Blocks of the KV pool.")?,
            kv_cached_blocks: gauge(
                &r,
                "realm_kv_cache_cached_blocks",
                "Blocks no request holds that keep a cached prefix.",
            )?,
            prefix_queries: plain_counter(
                &r,
                "realm_prefix_cache_queries_total",
                "Prompt tokens looked up in the prefix cache.",
            )?,
            prefix_hits: plain_counter(
                &r,
                "realm_prefix_cache_hits_total",
                "Prompt tokens found in the prefix cache.",
            )?,
            preemptions: plain_counter(
                &r,
                "realm_num_preemptions_total",
                "Sequences preempted (KV blocks given to an earlier request; recomputed later).",
            )?,
            engine_steps: plain_counter(
                &r,
                "realm_engine_steps_total",
                "Forward passes of the engine.",
            )?,
            draft_tokens: plain_counter(
                &r,
                "realm_spec_decode_draft_tokens_total",
                "Draft tokens proposed by prompt lookup (speculative decoding).",
            )?,
            draft_accepted: plain_counter(
                &r,
                "realm_spec_decode_accepted_tokens_total",
                "Draft tokens the model's own picks confirmed (answer tokens without a pass of their own).",
            )?,
            masks: plain_counter(
                &r,
                "realm_constrained_masks_total",
                "Token masks of constrained decoding (structured output), one per constrained token.",
            )?,
            mask_seconds: seconds_counter(
                &r,
                "realm_constrained_mask_seconds_total",
                "Time spent computing token masks, beside the engine's forward passes.",
            )?,
            mask_wait_seconds: seconds_counter(
                &r,
                "realm_constrained_mask_wait_seconds_total",
                "Time forward passes waited for token masks after they ended (what masks added).",
            )?,
            refused: plain_counter(
                &r,
                "realm_constrained_refused_total",
                "Greedy constrained picks whose model's best token the constraint refused (the next best allowed was taken).",
            )?,
            last: Mutex::new(SchedulerStats::default()),
            registry: r,
        })
    }

    /// The text exposition, after taking in the engine's counts.
    pub fn render(&self, s: &SchedulerStats) -> String {
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            self.prefix_queries.inc_by(s.kv.lookup_tokens.saturating_sub(last.kv.lookup_tokens));
            self.prefix_hits.inc_by(s.kv.hit_tokens.saturating_sub(last.kv.hit_tokens));
            self.preemptions.inc_by(s.preemptions.saturating_sub(last.preemptions));
            self.engine_steps.inc_by(s.steps.saturating_sub(last.steps));
            self.masks.inc_by(s.masks.saturating_sub(last.masks));
            self.refused.inc_by(s.refused.saturating_sub(last.refused));
            self.draft_tokens.inc_by(s.draft_tokens.saturating_sub(last.draft_tokens));
            self.draft_accepted.inc_by(s.draft_accepted.saturating_sub(last.draft_accepted));
            self.mask_seconds.inc_by((s.mask_seconds - last.mask_seconds).max(0.0));
            self.mask_wait_seconds.inc_by((s.mask_wait_seconds - last.mask_wait_seconds).max(0.0));
            *last = *s;
        }
        self.running.set(s.running as i64);
        self.waiting.set(s.waiting as i64);
        self.kv_blocks.set(s.kv.blocks as i64);
        self.kv_cached_blocks.set(s.kv.cached as i64);
        self.kv_usage.set(if s.kv.blocks == 0 {
            0.0
        } else {
            s.kv.in_use as f64 / s.kv.blocks as f64
        });
        let mut out = Vec::new();
        // Encoding to a Vec cannot fail on I/O; a metric family the encoder refuses is dropped.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}
