//! Typed metadata access: a key of the wrong type is an error naming the key, an absent key is
//! `Ok(None)` (or [`GgufError::MissingKey`] from the `require_` forms).

use crate::error::{GgufError, Result};
use crate::reader::Gguf;
use crate::value::{Array, Value};

fn wrong(key: &str, expected: &'static str, v: &Value<'_>) -> GgufError {
    GgufError::WrongType { key: key.into(), expected, found: v.value_type().name() }
}

fn missing(key: &str) -> GgufError {
    GgufError::MissingKey { key: key.into() }
}

impl<'a> Gguf<'a> {
    /// An integer key converted losslessly to `T` (any GGUF integer type is accepted).
    pub fn get_int<T: TryFrom<i128>>(&self, key: &str) -> Result<Option<T>> {
        let Some(v) = self.get(key) else { return Ok(None) };
        let n = v.as_i128().ok_or_else(|| wrong(key, "integer", v))?;
        T::try_from(n).map(Some).map_err(|_| GgufError::BadValue {
            key: key.into(),
            reason: format!("{n} is out of range for {}", std::any::type_name::<T>()),
        })
    }

    pub fn get_u32(&self, key: &str) -> Result<Option<u32>> {
        self.get_int(key)
    }

    pub fn require_u32(&self, key: &str) -> Result<u32> {
        self.get_u32(key)?.ok_or_else(|| missing(key))
    }

    /// A float key (f32, f64, or an integer).
    pub fn get_f32(&self, key: &str) -> Result<Option<f32>> {
        let Some(v) = self.get(key) else { return Ok(None) };
        v.as_f64().map(|x| Some(x as f32)).ok_or_else(|| wrong(key, "float", v))
    }

    pub fn get_bool(&self, key: &str) -> Result<Option<bool>> {
        let Some(v) = self.get(key) else { return Ok(None) };
        v.as_bool().map(Some).ok_or_else(|| wrong(key, "bool", v))
    }

    /// A UTF-8 string key.
    pub fn get_str(&self, key: &str) -> Result<Option<&'a str>> {
        let Some(v) = self.get(key) else { return Ok(None) };
        match v {
            Value::String(_) => v.as_str().map(Some).ok_or_else(|| GgufError::BadValue {
                key: key.into(),
                reason: "string is not valid UTF-8".into(),
            }),
            _ => Err(wrong(key, "string", v)),
        }
    }

    pub fn require_str(&self, key: &str) -> Result<&'a str> {
        self.get_str(key)?.ok_or_else(|| missing(key))
    }

    pub fn get_array(&self, key: &str) -> Result<Option<Array<'a>>> {
        let Some(v) = self.get(key) else { return Ok(None) };
        v.as_array().copied().map(Some).ok_or_else(|| wrong(key, "array", v))
    }

    /// A string array as `&str`s; invalid UTF-8 or a non-string element type is an error.
    pub fn get_str_array(&self, key: &str) -> Result<Option<Vec<&'a str>>> {
        let Some(a) = self.get_array(key)? else { return Ok(None) };
        a.to_strs().map(Some).ok_or_else(|| GgufError::BadValue {
            key: key.into(),
            reason: format!("expected an array of UTF-8 strings, found {}s", a.elem_type().name()),
        })
    }

    /// A numeric array as `f32`s.
    pub fn get_f32_array(&self, key: &str) -> Result<Option<Vec<f32>>> {
        let Some(a) = self.get_array(key)? else { return Ok(None) };
        a.to_f32s().map(Some).ok_or_else(|| GgufError::BadValue {
            key: key.into(),
            reason: format!("expected an array of numbers, found {}s", a.elem_type().name()),
        })
    }

    /// An integer array as `i64`s.
    pub fn get_i64_array(&self, key: &str) -> Result<Option<Vec<i64>>> {
        let Some(a) = self.get_array(key)? else { return Ok(None) };
        a.to_i64s().map(Some).ok_or_else(|| GgufError::BadValue {
            key: key.into(),
            reason: format!("expected an array of integers, found {}s", a.elem_type().name()),
        })
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Result<&'a str> {
        self.require_str(crate::keys::GENERAL_ARCHITECTURE)
    }
}
