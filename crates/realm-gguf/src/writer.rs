//! A GGUF v3 writer: metadata and tensor table first, then tensor data streamed tensor by tensor,
//! so multi-gigabyte synthetic models never sit in memory whole.

use std::collections::HashSet;
use std::io::Write;

use realm_quant::GgmlType;

use crate::error::{GgufError, Result};
use crate::reader::{DEFAULT_ALIGNMENT, MAGIC};
use crate::tensor::{MAX_DIMS, MAX_NAME_LEN};
use crate::value::{Value, ValueType};

/// An owned metadata value, for writing.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(Vec<u8>),
    /// Element type and elements (all of that type).
    Array(ValueType, Vec<OwnedValue>),
}

impl OwnedValue {
    pub fn str(s: &str) -> Self {
        OwnedValue::String(s.as_bytes().to_vec())
    }

    pub fn value_type(&self) -> ValueType {
        use OwnedValue as O;
        match self {
            O::U8(_) => ValueType::U8,
            O::I8(_) => ValueType::I8,
            O::U16(_) => ValueType::U16,
            O::I16(_) => ValueType::I16,
            O::U32(_) => ValueType::U32,
            O::I32(_) => ValueType::I32,
            O::U64(_) => ValueType::U64,
            O::I64(_) => ValueType::I64,
            O::F32(_) => ValueType::F32,
            O::F64(_) => ValueType::F64,
            O::Bool(_) => ValueType::Bool,
            O::String(_) => ValueType::String,
            O::Array(..) => ValueType::Array,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        use OwnedValue as O;
        match self {
            O::U8(v) => out.push(*v),
            O::I8(v) => out.extend(v.to_le_bytes()),
            O::U16(v) => out.extend(v.to_le_bytes()),
            O::I16(v) => out.extend(v.to_le_bytes()),
            O::U32(v) => out.extend(v.to_le_bytes()),
            O::I32(v) => out.extend(v.to_le_bytes()),
            O::U64(v) => out.extend(v.to_le_bytes()),
            O::I64(v) => out.extend(v.to_le_bytes()),
            O::F32(v) => out.extend(v.to_le_bytes()),
            O::F64(v) => out.extend(v.to_le_bytes()),
            O::Bool(v) => out.push(u8::from(*v)),
            O::String(s) => put_bytes(out, s),
            O::Array(elem, items) => {
                out.extend((*elem as u32).to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                for item in items {
                    if item.value_type() != *elem {
                        return Err(GgufError::Write {
                            reason: format!(
                                "array of {} holds a {}",
                                elem.name(),
                                item.value_type().name()
                            ),
                        });
                    }
                    item.encode(out)?;
                }
            }
        }
        Ok(())
    }
}

impl From<&Value<'_>> for OwnedValue {
    fn from(v: &Value<'_>) -> Self {
        use OwnedValue as O;
        match *v {
            Value::U8(x) => O::U8(x),
            Value::I8(x) => O::I8(x),
            Value::U16(x) => O::U16(x),
            Value::I16(x) => O::I16(x),
            Value::U32(x) => O::U32(x),
            Value::I32(x) => O::I32(x),
            Value::U64(x) => O::U64(x),
            Value::I64(x) => O::I64(x),
            Value::F32(x) => O::F32(x),
            Value::F64(x) => O::F64(x),
            Value::Bool(x) => O::Bool(x),
            Value::String(s) => O::String(s.to_vec()),
            Value::Array(a) => O::Array(a.elem_type(), a.iter().map(|e| (&e).into()).collect()),
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, s: &[u8]) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
}

/// A tensor declared to the writer.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    /// Innermost dimension first (ggml order).
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    pub offset: u64,
    pub size: u64,
}

/// Builds a GGUF file. Declare metadata and tensors, then [`GgufWriter::write`].
#[derive(Debug, Clone)]
pub struct GgufWriter {
    version: u32,
    alignment: u64,
    kv: Vec<(String, OwnedValue)>,
    tensors: Vec<TensorSpec>,
    names: HashSet<String>,
    data_size: u64,
}

impl Default for GgufWriter {
    fn default() -> Self {
        GgufWriter {
            version: 3,
            alignment: DEFAULT_ALIGNMENT,
            kv: Vec::new(),
            tensors: Vec::new(),
            names: HashSet::new(),
            data_size: 0,
        }
    }
}

impl GgufWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Override the version field (tests write v1/v2 headers to check the reader's response).
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Set `general.alignment`; must be a power of two. Call before adding tensors.
    pub fn set_alignment(&mut self, alignment: u32) -> Result<()> {
        if !alignment.is_power_of_two() || !self.tensors.is_empty() {
            return Err(GgufError::Write { reason: format!("bad alignment {alignment}") });
        }
        self.alignment = alignment.into();
        self.add_kv(crate::keys::GENERAL_ALIGNMENT, OwnedValue::U32(alignment))
    }

    pub fn add_kv(&mut self, key: &str, value: OwnedValue) -> Result<()> {
        if self.kv.iter().any(|(k, _)| k == key) {
            return Err(GgufError::Write { reason: format!("duplicate key '{key}'") });
        }
        self.kv.push((key.to_owned(), value));
        Ok(())
    }

    /// Declare a tensor; its data is supplied in declaration order by [`GgufWriter::write`].
    pub fn add_tensor(&mut self, name: &str, dims: &[u64], ty: GgmlType) -> Result<&TensorSpec> {
        let bad =
            |reason: String| GgufError::Write { reason: format!("tensor '{name}': {reason}") };
        if name.is_empty() || name.len() > MAX_NAME_LEN || !self.names.insert(name.to_owned()) {
            return Err(bad("empty, too long or duplicate name".into()));
        }
        if dims.is_empty() || dims.len() > MAX_DIMS {
            return Err(bad(format!("{} dimensions", dims.len())));
        }
        let size = ty.shape_bytes(dims).map_err(|e| bad(e.to_string()))?;
        let offset = self.data_size;
        self.data_size = (offset + size)
            .checked_next_multiple_of(self.alignment)
            .ok_or_else(|| bad("file too large".into()))?;
        self.tensors.push(TensorSpec {
            name: name.into(),
            dims: dims.to_vec(),
            ggml_type: ty,
            offset,
            size,
        });
        self.tensors.last().ok_or_else(|| bad("unreachable".into()))
    }

    pub fn tensors(&self) -> &[TensorSpec] {
        &self.tensors
    }

    /// Header bytes, including the padding up to the data section.
    pub fn header(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        out.extend(MAGIC);
        out.extend(self.version.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.kv.len() as u64).to_le_bytes());
        for (key, value) in &self.kv {
            put_bytes(&mut out, key.as_bytes());
            out.extend((value.value_type() as u32).to_le_bytes());
            value.encode(&mut out)?;
        }
        for t in &self.tensors {
            put_bytes(&mut out, t.name.as_bytes());
            out.extend((t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(t.ggml_type.id().to_le_bytes());
            out.extend(t.offset.to_le_bytes());
        }
        let padded = (out.len() as u64).next_multiple_of(self.alignment);
        out.resize(padded as usize, 0);
        Ok(out)
    }

    /// Write the file: the header, then each tensor's bytes from `fill(index, spec, buf)`, which
    /// must leave exactly `spec.size` bytes in `buf`.
    pub fn write<W: Write>(
        &self,
        w: &mut W,
        mut fill: impl FnMut(usize, &TensorSpec, &mut Vec<u8>) -> Result<()>,
    ) -> Result<u64> {
        let io =
            |e: std::io::Error| GgufError::Io { path: "<output>".into(), message: e.to_string() };
        let header = self.header()?;
        w.write_all(&header).map_err(io)?;
        let mut buf = Vec::new();
        let mut written = 0u64;
        for (i, t) in self.tensors.iter().enumerate() {
            buf.clear();
            fill(i, t, &mut buf)?;
            if buf.len() as u64 != t.size {
                return Err(GgufError::Write {
                    reason: format!(
                        "tensor '{}': got {} bytes, expected {}",
                        t.name,
                        buf.len(),
                        t.size
                    ),
                });
            }
            let pad = (t.size.next_multiple_of(self.alignment) - t.size) as usize;
            buf.resize(buf.len() + pad, 0);
            w.write_all(&buf).map_err(io)?;
            written += buf.len() as u64;
        }
        Ok(header.len() as u64 + written)
    }

    /// The whole file in memory, with tensor data given in declaration order (tests).
    pub fn to_bytes(&self, data: &[&[u8]]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write(&mut out, |i, _, buf| {
            buf.extend_from_slice(data.get(i).copied().unwrap_or_default());
            Ok(())
        })?;
        Ok(out)
    }
}
