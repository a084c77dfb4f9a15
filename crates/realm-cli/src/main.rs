//! `realm`: inspect GGUF models, tokenize, write synthetic models.
//!
//! Errors are printed as one line on stderr with a non-zero exit status; the libraries never
//! panic on bad input, and a panic hook turns any bug that does into one line too.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "realm", version, about = "Realm: GGUF models in, llama.cpp-exact tokens out")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Architecture, hyperparameters, tensor types and sizes of a GGUF model.
    Info(cmd::info::Args),
    /// Text to token ids, exactly as llama.cpp's llama_tokenize.
    Tokenize(cmd::tokenize::TokenizeArgs),
    /// Token ids back to text.
    Detokenize(cmd::tokenize::DetokenizeArgs),
    /// Render the model's chat template for a list of messages.
    Template(cmd::tokenize::TemplateArgs),
    /// Write a deterministic random-weight model of a named shape.
    Synth(cmd::synth::Args),
    /// Generate text from a prompt.
    Generate(cmd::generate::GenerateArgs),
    /// Interactive chat with the model's chat template.
    Chat(cmd::generate::ChatArgs),
    /// Prompt-processing and generation speed, measured like llama-bench.
    Bench(cmd::bench::BenchArgs),
    /// Throughput with several sequences at once (the serving engine), like llama-batched-bench.
    BatchedBench(cmd::batched_bench::BatchedBenchArgs),
    /// Perplexity of a text file, chunked like llama-perplexity.
    Perplexity(cmd::bench::PerplexityArgs),
}

fn main() -> ExitCode {
    // Output piped into a command that stops reading (`| head`) ends the program quietly, as
    // a C tool's would, instead of failing a write.
    #[cfg(unix)]
    // SAFETY: restores the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::panic::set_hook(Box::new(|info| {
        let msg = info.payload_as_str().unwrap_or("unknown panic");
        let at =
            info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("error: internal error (a bug in realm, please report it): {msg}{at}");
    }));
    let cli = Cli::parse_from(std::env::args_os().map(llama_style_flag));
    let result = match cli.command {
        Command::Info(a) => cmd::info::run(a),
        Command::Tokenize(a) => cmd::tokenize::tokenize(a),
        Command::Detokenize(a) => cmd::tokenize::detokenize(a),
        Command::Template(a) => cmd::tokenize::template(a),
        Command::Synth(a) => cmd::synth::run(a),
        Command::Generate(a) => cmd::generate::generate(a),
        Command::Chat(a) => cmd::generate::chat(a),
        Command::Bench(a) => cmd::bench::bench(a),
        Command::BatchedBench(a) => cmd::batched_bench::batched_bench(a),
        Command::Perplexity(a) => cmd::bench::perplexity(a),
    };
    report_peak_rss();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}

/// llama.cpp spells some long flags with one dash (`-npp 128 -ntg 128 -npl 1,2,4`): accept
/// those spellings as the long flags they are.
fn llama_style_flag(arg: std::ffi::OsString) -> std::ffi::OsString {
    match arg.to_str() {
        Some(f @ ("-npp" | "-ntg" | "-npl")) => format!("-{f}").into(),
        _ => arg,
    }
}

/// With `REALM_PEAK_RSS_FILE` set, write this process's peak resident memory (KiB, Linux's
/// `VmHWM`) there: tests bound the memory a malformed model can make `realm` use. (`getrusage`
/// from the parent would include the parent's own pages from before `exec`.)
fn report_peak_rss() {
    let Some(path) = std::env::var_os("REALM_PEAK_RSS_FILE") else { return };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    if let Some(kib) = kib {
        let _ = std::fs::write(path, kib.to_string());
    }
}
