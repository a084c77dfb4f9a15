//! `realm tokenize`, `realm detokenize`, `realm template`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use realm_tokenizer::{ChatMessage, ChatTemplate, Tokenizer};

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["text", "file"]))]
pub struct TokenizeArgs {
    /// Path to a GGUF file.
    model: PathBuf,
    /// Text to tokenize.
    #[arg(long)]
    text: Option<String>,
    /// File whose contents to tokenize (UTF-8).
    #[arg(long)]
    file: Option<PathBuf>,
    /// Parse special-token text such as `<|im_start|>` into its token.
    #[arg(long)]
    special: bool,
    /// Do not add BOS/EOS even where the model asks for them.
    #[arg(long)]
    no_add_special: bool,
    /// Print a JSON array of ids.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct DetokenizeArgs {
    /// Path to a GGUF file.
    model: PathBuf,
    /// Token ids: a JSON array or numbers separated by commas or spaces.
    #[arg(long)]
    ids: String,
    /// Render special tokens (e.g. `<|im_end|>`) as their text.
    #[arg(long)]
    special: bool,
}

#[derive(clap::Args)]
pub struct TemplateArgs {
    /// Path to a GGUF file.
    model: PathBuf,
    /// Messages as a JSON array of {"role": ..., "content": ...}.
    #[arg(long)]
    messages: String,
    /// Do not append the assistant-turn prefix.
    #[arg(long)]
    no_generation_prompt: bool,
}

fn load(model: &std::path::Path) -> anyhow::Result<Tokenizer> {
    let map = super::open(model)?;
    let g = map.gguf().with_context(|| format!("invalid GGUF file {}", model.display()))?;
    Tokenizer::from_gguf(&g)
        .with_context(|| format!("cannot build the tokenizer of {}", model.display()))
}

pub fn tokenize(a: TokenizeArgs) -> anyhow::Result<()> {
    let text = match (&a.text, &a.file) {
        (Some(t), _) => t.clone(),
        (None, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?
        }
        (None, None) => bail!("give --text or --file"),
    };
    let tok = load(&a.model)?;
    let ids = tok.tokenize(&text, !a.no_add_special, a.special);
    if a.json {
        println!("{}", serde_json::to_string(&ids)?);
    } else {
        for id in ids {
            let piece = String::from_utf8_lossy(&tok.token_to_piece(id, true)).into_owned();
            println!("{id:>6} {piece:?}");
        }
    }
    Ok(())
}

pub fn detokenize(a: DetokenizeArgs) -> anyhow::Result<()> {
    let ids = parse_ids(&a.ids)?;
    let tok = load(&a.model)?;
    if let Some(bad) = ids.iter().find(|&&id| id as usize >= tok.n_vocab()) {
        bail!("token id {bad} is out of range (vocabulary has {} tokens)", tok.n_vocab());
    }
    println!("{}", tok.detokenize(&ids, a.special));
    Ok(())
}

pub fn template(a: TemplateArgs) -> anyhow::Result<()> {
    let messages: Vec<ChatMessage> = serde_json::from_str(&a.messages)
        .context("--messages must be a JSON array of {role, content}")?;
    let map = super::open(&a.model)?;
    let g = map.gguf().with_context(|| format!("invalid GGUF file {}", a.model.display()))?;
    let tok = Tokenizer::from_gguf(&g)?;
    let template = ChatTemplate::from_gguf(&g, &tok)?;
    print!("{}", template.render(&messages, !a.no_generation_prompt)?);
    Ok(())
}

fn parse_ids(s: &str) -> anyhow::Result<Vec<u32>> {
    s.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().with_context(|| format!("'{p}' is not a token id")))
        .collect()
}
