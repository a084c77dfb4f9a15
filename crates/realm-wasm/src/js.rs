//! JS value conversions: typed reads of option fields, result objects, and errors.

use js_sys::{Array, Object, Reflect};
use realm_runtime::RuntimeError;
use wasm_bindgen::JsValue;

use crate::options::CompletionOptions;

/// A JS `Error` named `RealmError` with a stable `code` (see `RuntimeError::code`).
pub fn error(code: &str, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    e.set_name("RealmError");
    let obj: &JsValue = e.as_ref();
    // Setting a property on a fresh Error cannot fail; if it somehow did, the message remains.
    let _ = Reflect::set(obj, &"code".into(), &code.into());
    e.into()
}

pub fn runtime_error(e: RuntimeError) -> JsValue {
    error(e.code(), &e.to_string())
}

pub fn invalid(message: String) -> JsValue {
    error("invalid-argument", &message)
}

/// `obj[name]`, with `undefined` and `null` read as absent.
fn field(obj: &JsValue, name: &str) -> Result<Option<JsValue>, JsValue> {
    let v = Reflect::get(obj, &JsValue::from_str(name))?;
    Ok((!v.is_undefined() && !v.is_null()).then_some(v))
}

fn number(obj: &JsValue, name: &str) -> Result<Option<f64>, JsValue> {
    match field(obj, name)? {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(invalid(format!("{name} must be a finite number"))),
        },
    }
}

/// A non-negative integer no larger than `max` (JS numbers are exact up to 2^53).
fn integer(obj: &JsValue, name: &str, max: f64) -> Result<Option<u64>, JsValue> {
    match number(obj, name)? {
        None => Ok(None),
        Some(x) if x >= 0.0 && x.fract() == 0.0 && x <= max => Ok(Some(x as u64)),
        Some(x) => Err(invalid(format!("{name} = {x} must be an integer in [0, {max}]"))),
    }
}

fn boolean(obj: &JsValue, name: &str) -> Result<Option<bool>, JsValue> {
    match field(obj, name)? {
        None => Ok(None),
        Some(v) => {
            v.as_bool().map(Some).ok_or_else(|| invalid(format!("{name} must be a boolean")))
        }
    }
}

fn string(v: &JsValue, what: &str) -> Result<String, JsValue> {
    v.as_string().ok_or_else(|| invalid(format!("{what} must be a string")))
}

/// `stop`: a string or an array of strings.
fn stop_strings(obj: &JsValue) -> Result<Vec<String>, JsValue> {
    match field(obj, "stop")? {
        None => Ok(Vec::new()),
        Some(v) if Array::is_array(&v) => {
            Array::from(&v).iter().map(|s| string(&s, "each stop string")).collect()
        }
        Some(v) => Ok(vec![string(&v, "stop")?]),
    }
}

/// `constraint`: a JSON string of a [`realm_runtime::ConstraintSpec`] (`{"json_schema": …}`,
/// `"json_object"`, `{"regex": …}`, `{"lark": …}`, `{"gbnf": …}`), as realm-web writes it.
fn constraint(obj: &JsValue) -> Result<Option<realm_runtime::ConstraintSpec>, JsValue> {
    match field(obj, "constraint")? {
        None => Ok(None),
        Some(v) => {
            let text = string(&v, "constraint")?;
            serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| invalid(format!("constraint is not a constraint ({e}): {text:.80}")))
        }
    }
}

/// Read completion options from a plain object (`undefined`/`null`: every default).
pub fn completion_options(obj: &JsValue) -> Result<CompletionOptions, JsValue> {
    if obj.is_undefined() || obj.is_null() {
        return Ok(CompletionOptions::default());
    }
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    let to_usize = |v: Option<u64>| v.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let request = realm_runtime::RequestOptions {
        max_tokens: to_usize(integer(obj, "max_tokens", MAX_SAFE)?),
        temperature: number(obj, "temperature")?.map(|x| x as f32),
        top_k: integer(obj, "top_k", f64::from(u32::MAX))?.map(|n| n as u32),
        top_p: number(obj, "top_p")?.map(|x| x as f32),
        min_p: number(obj, "min_p")?.map(|x| x as f32),
        seed: integer(obj, "seed", MAX_SAFE)?,
        stop: stop_strings(obj)?,
        special_text: boolean(obj, "special")?.unwrap_or(false),
        constraint: constraint(obj)?,
        ..realm_runtime::RequestOptions::default()
    };
    Ok(CompletionOptions { request, n_ctx: to_usize(integer(obj, "n_ctx", MAX_SAFE)?) })
}

/// `[{ role, content }]` with string contents.
pub fn chat_messages(messages: &JsValue) -> Result<Vec<realm_runtime::ChatMessage>, JsValue> {
    if !Array::is_array(messages) {
        return Err(invalid("messages must be an array of { role, content }".into()));
    }
    Array::from(messages)
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let role = field(&m, "role")?
                .ok_or_else(|| invalid(format!("messages[{i}].role is missing")))?;
            let content = field(&m, "content")?.unwrap_or_else(|| JsValue::from_str(""));
            Ok(realm_runtime::ChatMessage::new(
                string(&role, &format!("messages[{i}].role"))?,
                string(&content, &format!("messages[{i}].content"))?,
            ))
        })
        .collect()
}

/// A plain object from `(key, value)` pairs.
pub fn object(pairs: &[(&str, JsValue)]) -> Result<JsValue, JsValue> {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v)?;
    }
    Ok(o.into())
}

pub fn strings(items: &[String]) -> JsValue {
    items.iter().map(|s| JsValue::from_str(s)).collect::<Array>().into()
}
