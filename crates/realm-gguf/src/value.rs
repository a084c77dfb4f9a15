//! Metadata values: scalars, strings and (nested) arrays, borrowed from the file bytes.
//!
//! Spec: <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md> (value types 0..=12).

use crate::cursor::Cursor;
use crate::error::{GgufError, Result};

/// The GGUF metadata value type ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    pub fn from_u32(id: u32) -> Option<Self> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// Encoded size of a scalar of this type; `None` for strings and arrays.
    pub fn scalar_size(self) -> Option<u64> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    /// Smallest possible encoding of one value of this type (used to cap claimed counts).
    pub(crate) fn min_size(self) -> u64 {
        match self {
            ValueType::String => 8,
            ValueType::Array => 12,
            other => other.scalar_size().unwrap_or(1),
        }
    }

    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }
}

/// One metadata value, borrowing strings and array payloads from the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
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
    /// Raw bytes of the string; GGUF says UTF-8 but a hostile file may lie, so check on use.
    String(&'a [u8]),
    Array(Array<'a>),
}

impl<'a> Value<'a> {
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F32(_) => ValueType::F32,
            Value::F64(_) => ValueType::F64,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
        }
    }

    /// Any integer value, widened; `None` for non-integers.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v.into(),
            Value::I8(v) => v.into(),
            Value::U16(v) => v.into(),
            Value::I16(v) => v.into(),
            Value::U32(v) => v.into(),
            Value::I32(v) => v.into(),
            Value::U64(v) => v.into(),
            Value::I64(v) => v.into(),
            _ => return None,
        })
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_i128().map(|v| v as f64),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The string, if this is a string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            Value::String(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Array<'a>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Parse one value of type `ty` at the cursor, validating everything it contains.
    pub(crate) fn parse(
        cur: &mut Cursor<'a>,
        ty: ValueType,
        key: &str,
        depth: u32,
    ) -> Result<Value<'a>> {
        Ok(match ty {
            ValueType::U8 => Value::U8(cur.u8("u8 value")?),
            ValueType::I8 => Value::I8(cur.u8("i8 value")? as i8),
            ValueType::U16 => Value::U16(u16::from_le_bytes(cur.array("u16 value")?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(cur.array("i16 value")?)),
            ValueType::U32 => Value::U32(cur.u32("u32 value")?),
            ValueType::I32 => Value::I32(cur.u32("i32 value")? as i32),
            ValueType::U64 => Value::U64(cur.u64("u64 value")?),
            ValueType::I64 => Value::I64(cur.u64("i64 value")? as i64),
            ValueType::F32 => Value::F32(f32::from_bits(cur.u32("f32 value")?)),
            ValueType::F64 => Value::F64(f64::from_bits(cur.u64("f64 value")?)),
            ValueType::Bool => {
                let offset = cur.offset();
                match cur.u8("bool value")? {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    value => {
                        return Err(GgufError::InvalidBool { key: key.into(), value, offset });
                    }
                }
            }
            ValueType::String => Value::String(cur.string_bytes("string value")?),
            ValueType::Array => Value::Array(Array::parse(cur, key, depth)?),
        })
    }
}

/// Deepest array nesting accepted (real files use 1; nested arrays are rare).
pub const MAX_ARRAY_DEPTH: u32 = 8;
/// Most elements an array may claim, whatever the file size.
pub const MAX_ARRAY_LEN: u64 = 1 << 32;

/// An array value: element type, count, and the validated bytes of its elements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Array<'a> {
    elem: ValueType,
    len: u64,
    raw: &'a [u8],
    depth: u32,
}

impl<'a> Array<'a> {
    fn parse(cur: &mut Cursor<'a>, key: &str, depth: u32) -> Result<Array<'a>> {
        let at = cur.offset();
        if depth >= MAX_ARRAY_DEPTH {
            return Err(GgufError::NestingTooDeep {
                key: key.into(),
                offset: at,
                limit: MAX_ARRAY_DEPTH,
            });
        }
        let type_id = cur.u32("array element type")?;
        let elem = ValueType::from_u32(type_id).ok_or_else(|| GgufError::UnknownValueType {
            key: key.into(),
            type_id,
            offset: at,
        })?;
        let len_at = cur.offset();
        let len = cur.u64("array length")?;
        // Every element takes at least `min_size` bytes: a count the rest of the file cannot hold
        // is rejected before anything is allocated or iterated.
        let limit = (cur.remaining() / elem.min_size()).min(MAX_ARRAY_LEN);
        if len > limit {
            if len <= MAX_ARRAY_LEN && len.saturating_mul(elem.min_size()) > cur.remaining() {
                return Err(GgufError::Truncated {
                    what: "array elements",
                    offset: len_at + 8,
                    needed: len.saturating_mul(elem.min_size()),
                    available: cur.remaining(),
                });
            }
            return Err(GgufError::TooMany {
                what: "array element",
                count: len,
                limit,
                offset: len_at,
            });
        }
        let start = cur.offset();
        match elem.scalar_size() {
            Some(size) => {
                // Bools must still be 0/1.
                let bytes = cur.take(len * size, "array elements")?;
                if elem == ValueType::Bool
                    && let Some(i) = bytes.iter().position(|&b| b > 1)
                {
                    return Err(GgufError::InvalidBool {
                        key: key.into(),
                        value: bytes[i],
                        offset: start + i as u64,
                    });
                }
            }
            None => {
                for _ in 0..len {
                    Value::parse(cur, elem, key, depth + 1)?;
                }
            }
        }
        let raw = cur.since(start);
        Ok(Array { elem, len, raw, depth })
    }

    pub fn elem_type(&self) -> ValueType {
        self.elem
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Iterate the elements in order.
    pub fn iter(&self) -> ArrayIter<'a> {
        ArrayIter {
            cur: Cursor::new(self.raw, 0),
            elem: self.elem,
            left: self.len,
            depth: self.depth,
        }
    }

    /// String elements as `&str`; `None` if the element type is not string or one is not UTF-8.
    pub fn to_strs(&self) -> Option<Vec<&'a str>> {
        if self.elem != ValueType::String {
            return None;
        }
        self.iter().map(|v| v.as_str()).collect()
    }

    /// String elements as raw bytes; `None` if the element type is not string.
    pub fn to_byte_strs(&self) -> Option<Vec<&'a [u8]>> {
        if self.elem != ValueType::String {
            return None;
        }
        self.iter()
            .map(|v| match v {
                Value::String(b) => Some(b),
                _ => None,
            })
            .collect()
    }

    /// `f32` elements (f64 narrowed, integers converted); `None` for other element types.
    pub fn to_f32s(&self) -> Option<Vec<f32>> {
        match self.elem {
            ValueType::String | ValueType::Array | ValueType::Bool => None,
            _ => self.iter().map(|v| v.as_f64().map(|x| x as f32)).collect(),
        }
    }

    /// Integer elements that fit in `i64`; `None` for other element types.
    pub fn to_i64s(&self) -> Option<Vec<i64>> {
        self.iter().map(|v| v.as_i128().and_then(|x| i64::try_from(x).ok())).collect()
    }
}

/// Iterator over the elements of an [`Array`]; the bytes were validated when the file was parsed.
pub struct ArrayIter<'a> {
    cur: Cursor<'a>,
    elem: ValueType,
    left: u64,
    depth: u32,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Value<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        Value::parse(&mut self.cur, self.elem, "", self.depth + 1).ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.left).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}
