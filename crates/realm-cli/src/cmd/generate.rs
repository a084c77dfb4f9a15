//! `realm generate`, `realm bench`, `realm perplexity`, `realm chat`: the engine from the CLI.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use realm_runtime::{
    BackendKind, ChatMessage, ConstraintSpec, CpuIsa, DeviceOptions, Engine, EngineOptions, Event,
    GenerateRequest, KvDtype, Profile, RequestOptions, Session,
};
use serde_json::json;

/// Options shared by every command that runs the model.
#[derive(clap::Args, Clone)]
pub struct RunArgs {
    /// Path to a GGUF file.
    pub model: PathBuf,
    /// Threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Backend: cpu, cpu-scalar, wgpu (`realm info --devices` lists the GPUs wgpu sees).
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// Context size (0 = the model's training context, at most 4096).
    #[arg(long = "ctx-size", short = 'c', default_value_t = 0)]
    pub ctx: usize,
    /// KV cache type: f16 or f32.
    #[arg(long, default_value = "f16")]
    pub kv: String,
    /// CPU instruction-set level: portable, avx2, avx-vnni or avx512-vnni (default: the
    /// environment variable REALM_CPU_ISA, else the best this CPU has).
    #[arg(long = "cpu-isa")]
    pub cpu_isa: Option<String>,
}

impl RunArgs {
    pub fn load(&self) -> anyhow::Result<Engine> {
        let backend = BackendKind::from_name(&self.backend).with_context(|| {
            format!("unknown backend '{}' ({})", self.backend, BackendKind::NAMES)
        })?;
        let profile = profiling();
        let cpu_isa = self.cpu_isa.as_deref().map(str::parse::<CpuIsa>).transpose()?;
        let opts = EngineOptions {
            device: DeviceOptions { backend, threads: self.threads, profile, cpu_isa },
        };
        Engine::load_path(&self.model, opts).with_context(|| {
            format!("cannot load {} on the {} backend", self.model.display(), self.backend)
        })
    }

    pub fn session<'e>(&self, engine: &'e Engine, at_least: usize) -> anyhow::Result<Session<'e>> {
        let n_ctx = match self.ctx {
            0 => engine.n_ctx_train().min(4096).max(at_least),
            n => n,
        };
        Ok(Session::new(engine, n_ctx, self.kv_dtype()?)?)
    }

    pub fn kv_dtype(&self) -> anyhow::Result<KvDtype> {
        Ok(match self.kv.as_str() {
            "f16" => KvDtype::F16,
            "f32" => KvDtype::F32,
            other => bail!("unknown KV cache type '{other}' (f16, f32)"),
        })
    }
}

/// `REALM_PROFILE=1`: time every GPU op and print a table at the end.
pub fn profiling() -> bool {
    std::env::var("REALM_PROFILE").is_ok_and(|v| v == "1")
}

/// With `REALM_PROFILE=1`, the per-op GPU times (op, calls, total ms, mean µs, GB/s where the op
/// knows its bytes) on stderr, or why there are none.
pub fn print_profile(engine: &Engine) {
    if !profiling() {
        return;
    }
    let (ops, untimed) = match engine.profile() {
        Profile::Ops { ops, untimed } => (ops, untimed),
        Profile::Unavailable(why) => {
            eprintln!("profile: unavailable: {why}");
            return;
        }
    };
    let total: f64 = ops.iter().map(|o| o.seconds).sum();
    eprintln!("profile: GPU time per op ({:.1} ms in all)", total * 1e3);
    eprintln!(
        "{:<40} {:>7} {:>10} {:>10} {:>6} {:>10} {:>8}",
        "op", "calls", "total ms", "mean µs", "%", "MB moved", "GB/s"
    );
    for o in &ops {
        let (mb, gbs) = if o.bytes > 0 && o.seconds > 0.0 {
            (
                format!("{:.1}", o.bytes as f64 / 1e6),
                format!("{:.2}", o.bytes as f64 / o.seconds / 1e9),
            )
        } else {
            ("-".into(), "-".into())
        };
        eprintln!(
            "{:<40} {:>7} {:>10.2} {:>10.1} {:>6.1} {:>10} {:>8}",
            o.op,
            o.calls,
            o.seconds * 1e3,
            o.seconds * 1e6 / o.calls.max(1) as f64,
            100.0 * o.seconds / total.max(1e-12),
            mb,
            gbs
        );
    }
    if untimed > 0 {
        eprintln!("profile: {untimed} passes ran untimed (more than 2048 in one submit)");
    }
}

#[derive(clap::Args, Clone)]
pub struct SampleArgs {
    /// Sampling temperature (0 = greedy).
    #[arg(long)]
    temperature: Option<f32>,
    #[arg(long)]
    top_k: Option<u32>,
    #[arg(long)]
    top_p: Option<f32>,
    #[arg(long)]
    min_p: Option<f32>,
    #[arg(long)]
    repeat_penalty: Option<f32>,
    #[arg(long)]
    seed: Option<u64>,
}

impl SampleArgs {
    /// The request options these flags give; `temperature` when `--temperature` is absent.
    fn options(&self, temperature: Option<f32>, max_tokens: usize) -> RequestOptions {
        RequestOptions {
            max_tokens: Some(max_tokens),
            temperature: self.temperature.or(temperature),
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            seed: self.seed,
            ..RequestOptions::default()
        }
    }
}

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["prompt", "prompt_file"]))]
pub struct GenerateArgs {
    #[command(flatten)]
    run: RunArgs,
    /// The prompt text.
    #[arg(long, short = 'p')]
    prompt: Option<String>,
    /// A file holding the prompt.
    #[arg(long)]
    prompt_file: Option<PathBuf>,
    /// Parse special-token text in the prompt.
    #[arg(long)]
    special: bool,
    /// Tokens to generate.
    #[arg(short = 'n', long = "n-predict", default_value_t = 64)]
    n: usize,
    #[command(flatten)]
    sample: SampleArgs,
    /// Stop strings (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Print {"prompt_tokens", "tokens", "text"} as JSON instead of streaming text.
    #[arg(long)]
    json: bool,
    /// Write the logits of the last prompt position (little-endian f32) to this file.
    #[arg(long)]
    logits_out: Option<PathBuf>,
    /// Generate N answers to the prompt at once (the serving engine's continuous batching),
    /// each with its own seed (`--seed` + i): printed as each completes.
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    #[command(flatten)]
    constraint: ConstraintArgs,
}

/// Structured output: what the answer must match (one of them).
#[derive(clap::Args, Clone)]
#[group(multiple = false)]
pub struct ConstraintArgs {
    /// A JSON schema file: the answer is JSON valid under it.
    #[arg(long, value_name = "FILE")]
    json_schema: Option<PathBuf>,
    /// A grammar file: llama.cpp's GBNF (`root ::= …`), or llguidance's Lark when the file
    /// name ends in `.lark` (`start: …`).
    #[arg(long, value_name = "FILE")]
    grammar: Option<PathBuf>,
    /// A regular expression the whole answer matches.
    #[arg(long, value_name = "REGEX")]
    regex: Option<String>,
}

impl ConstraintArgs {
    pub fn spec(&self) -> anyhow::Result<Option<ConstraintSpec>> {
        let read = |f: &PathBuf| {
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))
        };
        Ok(if let Some(f) = &self.json_schema {
            let schema = serde_json::from_str(&read(f)?)
                .with_context(|| format!("{} is not JSON", f.display()))?;
            Some(ConstraintSpec::JsonSchema(schema))
        } else if let Some(f) = &self.grammar {
            let g = read(f)?;
            Some(if f.extension().is_some_and(|e| e == "lark") {
                ConstraintSpec::Lark(g)
            } else {
                ConstraintSpec::Gbnf(g)
            })
        } else {
            self.regex.clone().map(ConstraintSpec::Regex)
        })
    }
}

pub fn generate(a: GenerateArgs) -> anyhow::Result<()> {
    let text = match (&a.prompt, &a.prompt_file) {
        (Some(t), _) => t.clone(),
        (None, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?
        }
        (None, None) => bail!("give --prompt or --prompt-file"),
    };
    let engine = a.run.load()?;
    let prompt = engine.tokenizer().tokenize(&text, true, a.special);
    let mut options = a.sample.options(Some(0.0), a.n);
    options.stop = a.stop.clone();
    options.constraint = a.constraint.spec()?;
    if a.parallel > 1 {
        return super::parallel::run(engine, &a.run, prompt, options, a.parallel, a.json);
    }
    let mut s = a.run.session(&engine, prompt.len() + a.n)?;
    if let Some(path) = &a.logits_out {
        let (logits, _) = s.prefill(&prompt)?;
        let bytes: Vec<u8> = logits.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let req = GenerateRequest::new(prompt.clone(), options);
    let stdout = std::io::stdout();
    let out = s.generate(&req, Some(interrupt_flag()), |e| {
        if a.json {
            return;
        }
        let (Event::Token { text, .. } | Event::Flush { text }) = e;
        let mut lock = stdout.lock();
        let _ = lock.write_all(text.as_bytes());
        let _ = lock.flush();
    })?;
    if a.json {
        println!(
            "{}",
            json!({"prompt_tokens": prompt, "tokens": out.tokens, "text": out.text, "finish_reason": out.finish.as_str()})
        );
    } else {
        println!();
        let n = out.tokens.len();
        eprintln!(
            "[{} prompt tokens in {:.3} s ({} reused), {n} tokens in {:.3} s: {:.1} tok/s, finish: {:?}]",
            prompt.len(),
            out.prompt_seconds,
            out.reused,
            out.decode_seconds,
            n as f64 / out.decode_seconds.max(1e-9),
            out.finish
        );
    }
    print_profile(&engine);
    Ok(())
}

#[derive(clap::Args)]
pub struct ChatArgs {
    #[command(flatten)]
    run: RunArgs,
    /// System prompt.
    #[arg(long)]
    system: Option<String>,
    /// Most tokens per answer.
    #[arg(short = 'n', long = "n-predict", default_value_t = 512)]
    n: usize,
    #[command(flatten)]
    sample: SampleArgs,
}

/// Interactive chat: the model's chat template, streaming answers, Ctrl-C stops the answer.
pub fn chat(a: ChatArgs) -> anyhow::Result<()> {
    let engine = a.run.load()?;
    let mut s = a.run.session(&engine, 0)?;
    let mut messages: Vec<ChatMessage> = a.system.iter().map(ChatMessage::system).collect();
    let flag = interrupt_flag();
    let stdin = std::io::stdin();
    eprintln!(
        "realm chat: {} on {} — empty line or Ctrl-D quits, Ctrl-C stops an answer",
        a.run.model.display(),
        engine.backend_info().name
    );
    loop {
        eprint!("> ");
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        messages.push(ChatMessage::user(line.trim_end()));
        let rendered = engine.chat_template().render(&messages, true)?;
        let prompt = engine.tokenizer().tokenize(&rendered, true, true);
        let req = GenerateRequest::new(prompt, a.sample.options(None, a.n));
        flag.store(false, Ordering::Relaxed);
        let out = s.generate(&req, Some(flag), |e| {
            let (Event::Token { text, .. } | Event::Flush { text }) = e;
            print!("{text}");
            let _ = std::io::stdout().flush();
        })?;
        println!();
        messages.push(ChatMessage::assistant(out.text));
    }
    Ok(())
}

/// A flag set by SIGINT (Ctrl-C), so an answer stops and the program goes on.
fn interrupt_flag() -> &'static AtomicBool {
    static FLAG: AtomicBool = AtomicBool::new(false);
    extern "C" fn on_sigint(_: libc::c_int) {
        FLAG.store(true, Ordering::Relaxed);
    }
    // SAFETY: installs an async-signal-safe handler (one atomic store).
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
    &FLAG
}
