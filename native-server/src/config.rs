//! The server's options: command-line flags (llama-server's spellings accepted where a flag
//! means the same) and the TOML file of tenants (`--config`).

use std::path::PathBuf;

use serde::Deserialize;

/// `realm-server` flags.
#[derive(clap::Parser, Debug, Clone)]
#[command(name = "realm-server", version, about = "Realm's OpenAI-compatible and WebSocket server")]
pub struct Args {
    /// The GGUF model (default: SmolLM2-135M-Instruct Q4_1 from the cache, as scripts/setup.sh
    /// fetches it).
    #[arg(short = 'm', long)]
    pub model: Option<PathBuf>,
    /// Names the model is served under (`model` in requests); the first is reported. Default:
    /// the file's stem.
    #[arg(short = 'a', long)]
    pub alias: Vec<String>,
    /// Address to listen on: loopback unless told otherwise.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// cpu, cpu-scalar (the reference kernels) or wgpu.
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// CPU threads (0: every core).
    #[arg(short = 't', long, default_value_t = 0)]
    pub threads: usize,
    /// CPU instruction-set level: portable, avx2, avx-vnni or avx512-vnni (default: the
    /// environment variable REALM_CPU_ISA, else the best this CPU has).
    #[arg(long = "cpu-isa")]
    pub cpu_isa: Option<String>,
    /// Memory of the KV pool (e.g. 256M, 2G): it bounds the tokens held by every request
    /// together. Default: what `--ctx-size` positions take, else 256 MiB.
    #[arg(long)]
    pub kv_mem: Option<String>,
    /// Positions of the KV pool (llama-server's `-c`) when `--kv-mem` is not given; also the
    /// most one request may hold (prompt and answer; at most the model's trained context).
    #[arg(short = 'c', long = "ctx-size")]
    pub ctx_size: Option<usize>,
    /// Requests running at once (llama-server's `-np`/`--parallel`).
    #[arg(long = "max-running", visible_alias = "parallel", default_value_t = 16)]
    pub max_running: usize,
    /// Requests waiting for a place; past it, 503 with Retry-After.
    #[arg(long, default_value_t = 256)]
    pub max_waiting: usize,
    /// Tokens per engine step (decode rows plus prompt chunks).
    #[arg(long, default_value_t = 512)]
    pub max_batch_tokens: usize,
    /// Speculative decoding by prompt lookup (requests without logprobs or a constraint): most
    /// draft tokens per step (llama-server's `--draft-max`); 0 turns it off. Drafts come from
    /// the request's own prompt and answer; the output is the same as without.
    #[arg(long = "draft-max", default_value_t = 8)]
    pub draft_max: usize,
    /// Draft whenever the prompt's n-gram matches, as far as the step's row cap allows. By
    /// default a draft token is sent only where its chance of being kept (the request's own
    /// record) pays for the row it adds to the step, by the step times measured as it runs:
    /// in a big batch on a CPU, only near-certain drafts do.
    #[arg(long = "draft-always")]
    pub draft_always: bool,
    /// An API key (repeatable): requests must carry one (`Authorization: Bearer KEY` or
    /// `X-Api-Key`). Keys given here belong to the tenant `default`, without limits.
    #[arg(long = "api-key", env = "REALM_API_KEY")]
    pub api_keys: Vec<String>,
    /// Tenants, their keys (SHA-256) and limits (see native-server/README.md).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Seconds in-flight requests may take to finish after SIGTERM/SIGINT before they are
    /// cancelled.
    #[arg(long, default_value_t = 30)]
    pub drain_timeout: u64,
    /// Log prompts and answers (off by default).
    #[arg(long)]
    pub log_content: bool,
    /// Log lines as JSON.
    #[arg(long)]
    pub log_json: bool,
    /// Allowed CORS origins (repeatable; `*` for any). CORS is off without one.
    #[arg(long = "cors-origin")]
    pub cors_origins: Vec<String>,
    /// Largest request body, bytes (past it: 413).
    #[arg(long, default_value_t = 4 << 20)]
    pub max_body: usize,
    /// Open connections at most (HTTP and WebSocket); more wait in the listen queue.
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
    /// Seconds a client may take to send a request's headers.
    #[arg(long, default_value_t = 10)]
    pub header_timeout: u64,
    /// Seconds a client may take to send a request's body.
    #[arg(long, default_value_t = 30)]
    pub body_timeout: u64,
    /// Seconds a WebSocket may stay idle (no message either way, no request running) before
    /// it is closed (4002).
    #[arg(long, default_value_t = 300)]
    pub ws_idle_timeout: u64,
    /// Requests one WebSocket connection may have in flight.
    #[arg(long, default_value_t = 64)]
    pub ws_max_in_flight: u32,
    /// Key that `/metrics` requires (Bearer or X-Api-Key); without one `/metrics` is open.
    #[arg(long, env = "REALM_METRICS_KEY")]
    pub metrics_key: Option<String>,
    /// Most choices per request (`n`).
    #[arg(long, default_value_t = 16)]
    pub max_choices: u32,
}

/// The `--config` file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<TenantConfig>,
}

/// One tenant: its keys and limits. Omitted limits are unlimited.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub name: String,
    /// SHA-256 of each API key, hex (`printf %s KEY | sha256sum`).
    pub key_sha256: Vec<String>,
    pub requests_per_minute: Option<u32>,
    /// Prompt tokens plus `max_tokens`, per choice, charged when a request is admitted (as
    /// OpenAI counts its token limits).
    pub tokens_per_minute: Option<u32>,
    /// Requests of this tenant in flight at once.
    pub max_concurrent: Option<u32>,
    /// The largest `max_tokens` (also the default when a request gives none).
    pub max_tokens: Option<u32>,
    /// Models this tenant may use (their served names); empty: every model.
    #[serde(default)]
    pub models: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl ConfigFile {
    pub fn load(path: &std::path::Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let c: ConfigFile = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.into(), message: e.to_string() })?;
        for t in &c.tenants {
            if t.name.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "{}: a tenant without a name",
                    path.display()
                )));
            }
            for k in &t.key_sha256 {
                if crate::auth::parse_hex32(k).is_none() {
                    return Err(ConfigError::Invalid(format!(
                        "{}: tenant {}: key_sha256 '{k}' is not 64 hex digits",
                        path.display(),
                        t.name
                    )));
                }
            }
            let zero = [t.requests_per_minute, t.tokens_per_minute, t.max_concurrent, t.max_tokens];
            if zero.contains(&Some(0)) {
                return Err(ConfigError::Invalid(format!(
                    "{}: tenant {}: a limit of 0 (omit it for no limit)",
                    path.display(),
                    t.name
                )));
            }
        }
        Ok(c)
    }
}

/// `256M`, `2G`, `1048576`, `512MiB` → bytes.
pub fn parse_size(s: &str) -> Result<u64, ConfigError> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num.parse().map_err(|_| ConfigError::Invalid(format!("size '{s}': no number")))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(ConfigError::Invalid(format!("size '{s}': unit K, M or G"))),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| ConfigError::Invalid(format!("size '{s}' is too large")))
}

/// llama-server's spellings that clap cannot take as they are (`-np 8`: a two-letter short
/// flag) → Realm's.
pub fn llama_server_spellings(args: impl Iterator<Item = String>) -> Vec<String> {
    args.map(|a| match a.as_str() {
        "-np" => "--parallel".into(),
        _ => a,
    })
    .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn sizes_and_llama_server_flags() {
        assert_eq!(parse_size("256M").unwrap(), 256 << 20);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("x").is_err() && parse_size("3T").is_err());
        let argv =
            ["realm-server", "-m", "a.gguf", "-c", "8192", "-np", "8", "-t", "2", "--api-key", "k"];
        let a = Args::parse_from(llama_server_spellings(argv.iter().map(|s| s.to_string())));
        assert_eq!(a.model, Some(PathBuf::from("a.gguf")));
        assert_eq!((a.ctx_size, a.max_running, a.threads), (Some(8192), 8, 2));
        assert_eq!(a.api_keys, ["k"]);
        assert_eq!(a.host, "127.0.0.1");
    }

    #[test]
    fn tenants_file() {
        let dir = std::env::temp_dir().join(format!("realm-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.toml");
        let good = format!(
            "[[tenant]]\nname = \"a\"\nkey_sha256 = [\"{}\"]\nrequests_per_minute = 5\n",
            "ab".repeat(32)
        );
        std::fs::write(&p, good).unwrap();
        let c = ConfigFile::load(&p).unwrap();
        assert_eq!(c.tenants[0].requests_per_minute, Some(5));
        std::fs::write(&p, "[[tenant]]\nname = \"a\"\nkey_sha256 = [\"zz\"]\n").unwrap();
        assert!(ConfigFile::load(&p).is_err());
        std::fs::write(&p, "[[tenant]]\nname = \"a\"\nkey_sha256 = []\nfoo = 1\n").unwrap();
        assert!(ConfigFile::load(&p).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
