//! The GGUF reader: header, metadata, tensor table, data section.
//!
//! Format: <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>. Checks follow the spirit
//! of llama.cpp's `ggml/src/gguf.cpp` (commit 0c1e570) and are stricter where a hostile file could
//! make us allocate or index out of bounds: every count is capped by the bytes that remain, all
//! arithmetic is overflow-checked, tensor extents are checked against the data section and each
//! other, and duplicate keys or tensor names are rejected.

use std::collections::HashMap;

use realm_quant::GgmlType;

use crate::cursor::Cursor;
use crate::error::{GgufError, Result};
use crate::keys;
use crate::tensor::{MAX_DIMS, MAX_NAME_LEN, TensorInfo};
use crate::value::{Value, ValueType};

pub const MAGIC: [u8; 4] = *b"GGUF";
/// Alignment of the data section when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Largest `general.alignment` accepted.
pub const MAX_ALIGNMENT: u64 = 1 << 20;
/// Most metadata entries a file may claim.
pub const MAX_KV: u64 = 1 << 20;
/// Most tensors a file may claim.
pub const MAX_TENSORS: u64 = 1 << 20;
/// Smallest encoding of one metadata entry: key length, a 1-byte key, type, a 1-byte value.
const MIN_KV_SIZE: u64 = 8 + 1 + 4 + 1;
/// Smallest encoding of one tensor info: name length, 1-byte name, n_dims, one dim, type, offset.
const MIN_TENSOR_INFO_SIZE: u64 = 8 + 1 + 4 + 8 + 4 + 8;

/// A parsed GGUF file (or the header of one, when parsed from a prefix).
#[derive(Debug, Clone)]
pub struct Gguf<'a> {
    version: u32,
    metadata: Vec<(&'a str, Value<'a>)>,
    key_index: HashMap<&'a str, usize>,
    tensors: Vec<TensorInfo<'a>>,
    tensor_index: HashMap<&'a str, usize>,
    alignment: u64,
    data_offset: u64,
    file_size: u64,
    bytes: &'a [u8],
}

/// Result of parsing a prefix of a file that is still arriving.
#[derive(Debug)]
pub enum Parsed<'a> {
    /// The header is not complete: at least `total` bytes of the file are needed to go on.
    NeedMore { total: u64 },
    /// The header is complete and valid against the announced file size.
    Ready(Box<Gguf<'a>>),
}

impl<'a> Gguf<'a> {
    /// Parse a whole file held in memory (or memory-mapped).
    pub fn parse(bytes: &'a [u8]) -> Result<Gguf<'a>> {
        parse_inner(bytes, bytes.len() as u64)
    }

    /// Parse the header from the first bytes of a file of `file_size` bytes that is still
    /// arriving (a streaming download). Returns how many bytes are needed when the prefix is too
    /// short; tensor extents are validated against `file_size`. Tensor data in the returned value
    /// is only readable where `prefix` covers it.
    pub fn parse_prefix(prefix: &'a [u8], file_size: u64) -> Result<Parsed<'a>> {
        let have = prefix.len() as u64;
        if have > file_size {
            return Err(GgufError::BadValue {
                key: "file_size".into(),
                reason: format!("prefix of {have} bytes is longer than the file ({file_size})"),
            });
        }
        match parse_inner(prefix, file_size) {
            Ok(g) => Ok(Parsed::Ready(Box::new(g))),
            Err(GgufError::Truncated { offset, needed, .. })
                if have < file_size && offset.saturating_add(needed) <= file_size =>
            {
                Ok(Parsed::NeedMore { total: offset + needed })
            }
            Err(GgufError::Empty) if file_size > 0 => Ok(Parsed::NeedMore { total: 8 }),
            Err(e) => Err(e),
        }
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Offset of the data section from the start of the file (also the header size).
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// All metadata entries, in file order.
    pub fn metadata(&self) -> &[(&'a str, Value<'a>)] {
        &self.metadata
    }

    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.key_index.get(key).map(|&i| &self.metadata[i].1)
    }

    pub fn tensors(&self) -> &[TensorInfo<'a>] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo<'a>> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// Like [`Self::tensor`], but a missing tensor is a typed error naming it.
    pub fn require_tensor(&self, name: &str) -> Result<&TensorInfo<'a>> {
        self.tensor(name).ok_or_else(|| GgufError::MissingTensor { name: name.into() })
    }

    /// The bytes of a tensor's data (zero-copy).
    pub fn tensor_data(&self, info: &TensorInfo<'_>) -> Result<&'a [u8]> {
        // Extents were validated at parse time against file_size; only the prefix may be short.
        let start = self.data_offset + info.offset;
        let end = start + info.size;
        let have = self.bytes.len() as u64;
        if end > have {
            return Err(GgufError::DataNotLoaded { tensor: info.name.into(), needed: end, have });
        }
        Ok(&self.bytes[start as usize..end as usize])
    }
}

fn parse_inner(bytes: &[u8], file_size: u64) -> Result<Gguf<'_>> {
    if bytes.is_empty() {
        return Err(GgufError::Empty);
    }
    let mut cur = Cursor::new(bytes, 0);
    let magic: [u8; 4] = match cur.array("magic") {
        Ok(m) => m,
        Err(e) if MAGIC.starts_with(bytes) => return Err(e),
        Err(_) => return Err(GgufError::NotGguf { found: bytes.to_vec() }),
    };
    if magic != MAGIC {
        return Err(GgufError::NotGguf { found: magic.to_vec() });
    }
    let version = cur.u32("version")?;
    if version != 2 && version != 3 {
        return Err(GgufError::UnsupportedVersion { version });
    }
    let n_tensors_at = cur.offset();
    let n_tensors = cur.u64("tensor count")?;
    if n_tensors > MAX_TENSORS {
        return Err(GgufError::TooMany {
            what: "tensor",
            count: n_tensors,
            limit: MAX_TENSORS,
            offset: n_tensors_at,
        });
    }
    let n_kv_at = cur.offset();
    let n_kv = cur.u64("metadata count")?;
    check_count(&cur, "metadata entry", n_kv, MAX_KV, MIN_KV_SIZE, n_kv_at)?;

    let (metadata, key_index) = parse_metadata(&mut cur, n_kv)?;
    let alignment = read_alignment(&metadata, &key_index)?;

    check_count(&cur, "tensor", n_tensors, MAX_TENSORS, MIN_TENSOR_INFO_SIZE, n_tensors_at)?;
    let (tensors, tensor_index) = parse_tensor_infos(&mut cur, n_tensors)?;

    let header_end = cur.offset();
    let data_offset = header_end.checked_next_multiple_of(alignment).ok_or_else(|| {
        GgufError::BadValue { key: keys::GENERAL_ALIGNMENT.into(), reason: "overflow".into() }
    })?;
    let data_size = file_size.saturating_sub(data_offset);
    if file_size < data_offset && !tensors.is_empty() {
        return Err(GgufError::Truncated {
            what: "padding before tensor data",
            offset: header_end,
            needed: data_offset - header_end,
            available: file_size - header_end,
        });
    }
    check_extents(&tensors, alignment, data_size)?;

    Ok(Gguf {
        version,
        metadata,
        key_index,
        tensors,
        tensor_index,
        alignment,
        data_offset,
        file_size,
        bytes,
    })
}

/// Reject counts above the hard limit, and counts the rest of the file cannot possibly hold.
fn check_count(
    cur: &Cursor<'_>,
    what: &'static str,
    count: u64,
    limit: u64,
    min_size: u64,
    offset: u64,
) -> Result<()> {
    if count > limit {
        return Err(GgufError::TooMany { what, count, limit, offset });
    }
    let needed = count * min_size; // count <= 2^20, min_size < 64: no overflow
    if needed > cur.remaining() {
        return Err(GgufError::Truncated {
            what,
            offset: cur.offset(),
            needed,
            available: cur.remaining(),
        });
    }
    Ok(())
}

type Metadata<'a> = (Vec<(&'a str, Value<'a>)>, HashMap<&'a str, usize>);

fn parse_metadata<'a>(cur: &mut Cursor<'a>, n_kv: u64) -> Result<Metadata<'a>> {
    // n_kv was checked against the remaining bytes, so this allocation is bounded by the file.
    let n = n_kv as usize;
    let mut entries = Vec::with_capacity(n);
    let mut index = HashMap::with_capacity(n);
    for _ in 0..n_kv {
        let at = cur.offset();
        let key = cur.utf8("metadata key")?;
        let type_at = cur.offset();
        let type_id = cur.u32("metadata value type")?;
        let ty = ValueType::from_u32(type_id).ok_or_else(|| GgufError::UnknownValueType {
            key: key.into(),
            type_id,
            offset: type_at,
        })?;
        let value = Value::parse(cur, ty, key, 0)?;
        if index.insert(key, entries.len()).is_some() {
            return Err(GgufError::DuplicateKey { key: key.into(), offset: at });
        }
        entries.push((key, value));
    }
    Ok((entries, index))
}

fn read_alignment(metadata: &[(&str, Value<'_>)], index: &HashMap<&str, usize>) -> Result<u64> {
    let Some(&i) = index.get(keys::GENERAL_ALIGNMENT) else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    let v = &metadata[i].1;
    let value = v.as_i128().ok_or_else(|| GgufError::WrongType {
        key: keys::GENERAL_ALIGNMENT.into(),
        expected: "integer",
        found: v.value_type().name(),
    })?;
    let bad = || GgufError::BadAlignment {
        value: value.clamp(0, u64::MAX.into()) as u64,
        max: MAX_ALIGNMENT,
    };
    let a = u64::try_from(value).map_err(|_| bad())?;
    if a == 0 || !a.is_power_of_two() || a > MAX_ALIGNMENT {
        return Err(bad());
    }
    Ok(a)
}

type Tensors<'a> = (Vec<TensorInfo<'a>>, HashMap<&'a str, usize>);

fn parse_tensor_infos<'a>(cur: &mut Cursor<'a>, n_tensors: u64) -> Result<Tensors<'a>> {
    let n = n_tensors as usize;
    let mut tensors = Vec::with_capacity(n);
    let mut index = HashMap::with_capacity(n);
    for _ in 0..n_tensors {
        let at = cur.offset();
        let info = parse_tensor_info(cur)?;
        if index.insert(info.name, tensors.len()).is_some() {
            return Err(GgufError::DuplicateTensor { name: info.name.into(), offset: at });
        }
        tensors.push(info);
    }
    Ok((tensors, index))
}

fn parse_tensor_info<'a>(cur: &mut Cursor<'a>) -> Result<TensorInfo<'a>> {
    let at = cur.offset();
    let name = cur.utf8("tensor name")?;
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(GgufError::BadValue {
            key: format!("tensor name at offset {at}"),
            reason: format!("length {} is outside 1..={MAX_NAME_LEN}", name.len()),
        });
    }
    let dims_at = cur.offset();
    let n_dims = cur.u32("tensor dimension count")?;
    if n_dims == 0 || n_dims as usize > MAX_DIMS {
        return Err(GgufError::BadDimCount {
            tensor: name.into(),
            n_dims,
            max: MAX_DIMS as u32,
            offset: dims_at,
        });
    }
    let mut dims = [1u64; MAX_DIMS];
    for d in dims.iter_mut().take(n_dims as usize) {
        *d = cur.u64("tensor dimension")?;
    }
    let type_at = cur.offset();
    let type_id = cur.u32("tensor type")?;
    let ggml_type = GgmlType::from_u32(type_id).ok_or_else(|| GgufError::UnknownTensorType {
        tensor: name.into(),
        type_id,
        offset: type_at,
    })?;
    let offset = cur.u64("tensor data offset")?;
    let size = tensor_size(name, &dims[..n_dims as usize], ggml_type)?;
    Ok(TensorInfo::new(name, dims, n_dims as u8, ggml_type, offset, size))
}

/// Byte size of a tensor, with every step overflow-checked.
fn tensor_size(name: &str, dims: &[u64], ty: GgmlType) -> Result<u64> {
    let bad =
        |reason: String| GgufError::BadShape { tensor: name.into(), dims: dims.to_vec(), reason };
    let mut n: u64 = 1;
    for &d in dims {
        if d > i64::MAX as u64 {
            return Err(bad(format!("dimension {d} exceeds {}", i64::MAX)));
        }
        n = n.checked_mul(d).ok_or_else(|| bad("element count overflows".into()))?;
    }
    if n > i64::MAX as u64 {
        return Err(bad("element count overflows".into()));
    }
    // Rows must be whole blocks (ggml's rule); the byte count is overflow-checked.
    ty.shape_bytes(dims).map_err(|e| bad(e.to_string()))
}

/// Every tensor aligned, inside the data section, and not overlapping another.
fn check_extents(tensors: &[TensorInfo<'_>], alignment: u64, data_size: u64) -> Result<()> {
    for t in tensors {
        if t.offset % alignment != 0 {
            return Err(GgufError::Misaligned {
                tensor: t.name.into(),
                offset: t.offset,
                alignment,
            });
        }
        let end = t.offset.checked_add(t.size);
        if end.is_none_or(|e| e > data_size) {
            return Err(GgufError::TensorOutOfBounds {
                tensor: t.name.into(),
                offset: t.offset,
                size: t.size,
                data_size,
            });
        }
    }
    let mut order: Vec<usize> = (0..tensors.len()).filter(|&i| tensors[i].size > 0).collect();
    order.sort_unstable_by_key(|&i| tensors[i].offset);
    for pair in order.windows(2) {
        let (a, b) = (&tensors[pair[0]], &tensors[pair[1]]);
        if a.offset + a.size > b.offset {
            return Err(GgufError::TensorOverlap { first: a.name.into(), second: b.name.into() });
        }
    }
    Ok(())
}
