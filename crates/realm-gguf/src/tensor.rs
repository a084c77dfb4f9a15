//! Tensor infos: name, shape, ggml type, and where the data lies in the file.

use realm_quant::GgmlType;

/// Most dimensions a tensor may have (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;
/// Longest tensor name in bytes (ggml's `GGML_MAX_NAME` is 64 including the NUL).
pub const MAX_NAME_LEN: usize = 63;

/// One entry of the tensor table. `dims[0]` is the innermost (contiguous) dimension, as in ggml.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo<'a> {
    pub name: &'a str,
    dims: [u64; MAX_DIMS],
    n_dims: u8,
    pub ggml_type: GgmlType,
    /// Offset of the data from the start of the data section (a multiple of the alignment).
    pub offset: u64,
    /// Size of the data in bytes (validated against the data section when the file was parsed).
    pub size: u64,
}

impl<'a> TensorInfo<'a> {
    pub(crate) fn new(
        name: &'a str,
        dims: [u64; MAX_DIMS],
        n_dims: u8,
        ggml_type: GgmlType,
        offset: u64,
        size: u64,
    ) -> Self {
        TensorInfo { name, dims, n_dims, ggml_type, offset, size }
    }

    /// The shape, innermost dimension first (ggml order: `[n_cols, n_rows, ...]`).
    pub fn dims(&self) -> &[u64] {
        &self.dims[..usize::from(self.n_dims).min(MAX_DIMS)]
    }

    /// Number of elements (validated not to overflow when the file was parsed).
    pub fn n_elements(&self) -> u64 {
        self.dims().iter().product()
    }

    /// Elements per row (`dims[0]`).
    pub fn row_len(&self) -> u64 {
        self.dims[0]
    }

    /// Number of rows (`n_elements / dims[0]`).
    pub fn n_rows(&self) -> u64 {
        self.dims()[1..].iter().product()
    }
}
