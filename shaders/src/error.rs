//! The error of shader generation (no dependencies: written by hand, not with thiserror).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShaderError {
    /// A variant that is not in [`crate::table`] was requested.
    NotInTable(String),
    /// A variant the target cannot run (cooperative matrices in the browser).
    NotForTarget(String),
    /// An `#include` named a file that does not exist.
    MissingFile(String),
    /// A preprocessor directive could not be applied.
    Preprocess { file: String, line: usize, detail: String },
}

impl fmt::Display for ShaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInTable(v) => write!(f, "shader variant {v} is not in the variant table"),
            Self::NotForTarget(v) => write!(f, "shader variant {v} cannot run there"),
            Self::MissingFile(p) => write!(f, "shader file {p} does not exist"),
            Self::Preprocess { file, line, detail } => write!(f, "{file}:{line}: {detail}"),
        }
    }
}

impl std::error::Error for ShaderError {}
