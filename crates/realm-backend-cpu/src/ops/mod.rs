//! The non-matmul ops.

pub(crate) mod attention;
pub(crate) mod elementwise;
pub(crate) mod norm;
pub(crate) mod rope;
