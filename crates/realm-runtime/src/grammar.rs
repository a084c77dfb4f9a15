//! The model's constrained-decoding tables ([`realm_grammar::Grammars`]: a token trie of the
//! whole vocabulary), built on the first request that needs them and shared after.

use std::sync::{Arc, OnceLock};

use realm_grammar::{GrammarError, Grammars};
use realm_tokenizer::Tokenizer;

#[derive(Default)]
pub(crate) struct GrammarCell(OnceLock<Result<Arc<Grammars>, GrammarError>>);

impl GrammarCell {
    /// The tables for `tok` (the same tokenizer on every call).
    pub(crate) fn get(&self, tok: &Tokenizer) -> Result<Arc<Grammars>, GrammarError> {
        self.0.get_or_init(|| Grammars::new(Arc::new(tok.clone())).map(Arc::new)).clone()
    }
}
