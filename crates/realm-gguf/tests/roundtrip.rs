//! Writer → reader round trips, streaming prefix parsing, and crafted hostile headers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use realm_gguf::{
    GgmlType, Gguf, GgufError, GgufWriter, OwnedValue as O, Parsed, Value, ValueType, keys,
};

fn sample() -> (GgufWriter, Vec<Vec<u8>>) {
    let mut w = GgufWriter::new();
    w.add_kv(keys::GENERAL_ARCHITECTURE, O::str("llama")).unwrap();
    w.add_kv("t.u8", O::U8(7)).unwrap();
    w.add_kv("t.i8", O::I8(-7)).unwrap();
    w.add_kv("t.u16", O::U16(65535)).unwrap();
    w.add_kv("t.i16", O::I16(-300)).unwrap();
    w.add_kv("t.u32", O::U32(1 << 31)).unwrap();
    w.add_kv("t.i32", O::I32(-5)).unwrap();
    w.add_kv("t.u64", O::U64(u64::MAX)).unwrap();
    w.add_kv("t.i64", O::I64(i64::MIN)).unwrap();
    w.add_kv("t.f32", O::F32(1.5)).unwrap();
    w.add_kv("t.f64", O::F64(-2.25)).unwrap();
    w.add_kv("t.bool", O::Bool(true)).unwrap();
    w.add_kv("t.str", O::str("héllo")).unwrap();
    w.add_kv("t.strs", O::Array(ValueType::String, vec![O::str("a"), O::str(""), O::str("ü")]))
        .unwrap();
    let nested = O::Array(
        ValueType::Array,
        vec![
            O::Array(ValueType::I32, vec![O::I32(1), O::I32(-2)]),
            O::Array(ValueType::String, vec![O::str("x")]),
            O::Array(ValueType::Bool, vec![]),
        ],
    );
    w.add_kv("t.nested", nested).unwrap();
    w.add_kv("t.f32s", O::Array(ValueType::F32, vec![O::F32(0.5), O::F32(-1.0)])).unwrap();
    w.add_tensor("a", &[64, 3], GgmlType::Q8_0).unwrap();
    w.add_tensor("b", &[5], GgmlType::F32).unwrap();
    w.add_tensor("c", &[256, 2, 1, 1], GgmlType::Q4_K).unwrap();
    let data =
        w.tensors().iter().map(|t| (0..t.size).map(|i| (i * 7 + 1) as u8).collect()).collect();
    (w, data)
}

fn sample_bytes() -> Vec<u8> {
    let (w, data) = sample();
    let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    w.to_bytes(&refs).unwrap()
}

#[test]
fn every_value_type_round_trips() {
    let bytes = sample_bytes();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.version(), 3);
    assert_eq!(g.metadata().len(), 16);
    assert_eq!(g.get_u32("t.u8").unwrap(), Some(7));
    assert_eq!(g.get_int::<i64>("t.i8").unwrap(), Some(-7));
    assert_eq!(g.get_int::<u16>("t.u16").unwrap(), Some(65535));
    assert_eq!(g.get_int::<i16>("t.i16").unwrap(), Some(-300));
    assert_eq!(g.get_u32("t.u32").unwrap(), Some(1 << 31));
    assert_eq!(g.get_int::<u64>("t.u64").unwrap(), Some(u64::MAX));
    assert_eq!(g.get_int::<i64>("t.i64").unwrap(), Some(i64::MIN));
    assert_eq!(g.get_f32("t.f32").unwrap(), Some(1.5));
    assert_eq!(g.get("t.f64"), Some(&Value::F64(-2.25)));
    assert_eq!(g.get_bool("t.bool").unwrap(), Some(true));
    assert_eq!(g.get_str("t.str").unwrap(), Some("héllo"));
    assert_eq!(g.get_str_array("t.strs").unwrap(), Some(vec!["a", "", "ü"]));
    assert_eq!(g.get_f32_array("t.f32s").unwrap(), Some(vec![0.5, -1.0]));
    let nested = g.get_array("t.nested").unwrap().unwrap();
    let inner: Vec<Value<'_>> = nested.iter().collect();
    assert_eq!(inner.len(), 3);
    assert_eq!(inner[0].as_array().unwrap().to_i64s(), Some(vec![1, -2]));
    assert_eq!(inner[1].as_array().unwrap().to_strs(), Some(vec!["x"]));
    assert!(inner[2].as_array().unwrap().is_empty());
    // Typed access errors name the key.
    let e = g.get_str("t.u8").unwrap_err();
    assert!(matches!(e, GgufError::WrongType { ref key, .. } if key == "t.u8"), "{e}");
    assert!(g.get_int::<u8>("t.u16").is_err());
    assert_eq!(g.get_u32("absent").unwrap(), None);
}

#[test]
fn tensors_round_trip() {
    let (w, data) = sample();
    let bytes = sample_bytes();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.tensors().len(), 3);
    assert_eq!(g.data_offset() % 32, 0);
    for (spec, want) in w.tensors().iter().zip(&data) {
        let t = g.tensor(&spec.name).unwrap();
        assert_eq!(t.dims(), spec.dims.as_slice());
        assert_eq!(t.ggml_type, spec.ggml_type);
        assert_eq!(g.tensor_data(t).unwrap(), want.as_slice());
    }
    let c = g.tensor("c").unwrap();
    assert_eq!((c.n_elements(), c.row_len(), c.n_rows()), (512, 256, 2));
    assert!(matches!(g.require_tensor("zz"), Err(GgufError::MissingTensor { .. })));
}

#[test]
fn custom_alignment_is_honoured() {
    let mut w = GgufWriter::new();
    w.set_alignment(64).unwrap();
    w.add_tensor("x", &[3], GgmlType::F32).unwrap();
    w.add_tensor("y", &[3], GgmlType::F32).unwrap();
    let bytes = w.to_bytes(&[&[1; 12], &[2; 12]]).unwrap();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.alignment(), 64);
    assert_eq!(g.data_offset() % 64, 0);
    assert_eq!(g.tensor("y").unwrap().offset, 64);
    assert_eq!(g.tensor_data(g.tensor("y").unwrap()).unwrap(), &[2; 12]);
}

#[test]
fn prefix_parsing_asks_for_more_until_the_header_is_complete() {
    let bytes = sample_bytes();
    let full = Gguf::parse(&bytes).unwrap();
    let size = bytes.len() as u64;
    let mut have = 0usize;
    let mut steps = 0;
    let g = loop {
        steps += 1;
        assert!(steps < 1000, "no progress");
        match Gguf::parse_prefix(&bytes[..have], size).unwrap() {
            Parsed::NeedMore { total } => {
                assert!(total as usize > have, "must ask for more than it has");
                assert!(total <= size);
                have = total as usize;
            }
            Parsed::Ready(g) => break g,
        }
    };
    assert!(have as u64 <= full.data_offset());
    assert_eq!(g.metadata(), full.metadata());
    assert_eq!(g.tensors(), full.tensors());
    // Tensor data beyond the prefix is reported, not read.
    let a = g.tensor("a").unwrap();
    assert!(matches!(g.tensor_data(a), Err(GgufError::DataNotLoaded { .. })));
    // Every prefix either asks for more or is complete; none errors.
    for n in 0..=bytes.len() {
        Gguf::parse_prefix(&bytes[..n], size).unwrap();
    }
}

#[test]
fn prefix_of_a_file_announced_too_small_is_an_error() {
    let bytes = sample_bytes();
    let short = (bytes.len() - 1) as u64;
    let r = Gguf::parse_prefix(&bytes[..short as usize], short);
    assert!(matches!(r, Err(GgufError::TensorOutOfBounds { .. })), "{r:?}");
}

fn put_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn hostile_headers_get_typed_errors() {
    let good = sample_bytes();
    let parse = |b: &[u8]| Gguf::parse(b).unwrap_err();

    assert!(matches!(parse(&[]), GgufError::Empty));
    assert!(matches!(parse(b"GG"), GgufError::Truncated { .. }));
    assert!(matches!(parse(b"\x89PNG\r\n\x1a\n...."), GgufError::NotGguf { .. }));
    let mut v1 = good.clone();
    v1[4] = 1;
    assert!(matches!(parse(&v1), GgufError::UnsupportedVersion { version: 1 }));
    let mut v9 = good.clone();
    v9[4] = 9;
    assert!(matches!(parse(&v9), GgufError::UnsupportedVersion { version: 9 }));

    let mut many_tensors = good.clone();
    put_u64(&mut many_tensors, 8, 1 << 62);
    assert!(matches!(parse(&many_tensors), GgufError::TooMany { what: "tensor", .. }));
    let mut many_kv = good.clone();
    put_u64(&mut many_kv, 16, 1 << 62);
    assert!(matches!(parse(&many_kv), GgufError::TooMany { .. }));
    let mut some_kv = good.clone();
    put_u64(&mut some_kv, 16, 1000);
    assert!(matches!(parse(&some_kv), GgufError::Truncated { .. }), "{:?}", parse(&some_kv));

    let mut long_key = good.clone();
    put_u64(&mut long_key, 24, 1 << 40);
    assert!(matches!(parse(&long_key), GgufError::TooMany { what: "string byte", .. }));
    let mut longish_key = good.clone();
    put_u64(&mut longish_key, 24, 1 << 20);
    assert!(matches!(parse(&longish_key), GgufError::Truncated { .. }));
}

#[test]
fn hostile_tensor_tables_get_typed_errors() {
    let bytes = |f: &dyn Fn(&mut GgufWriter)| {
        let mut w = GgufWriter::new();
        f(&mut w);
        let data: Vec<Vec<u8>> = w.tensors().iter().map(|t| vec![0; t.size as usize]).collect();
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        w.to_bytes(&refs).unwrap()
    };
    let one = bytes(&|w| {
        w.add_tensor("w", &[32, 2], GgmlType::Q8_0).unwrap();
    });
    let g = Gguf::parse(&one).unwrap();
    let hdr = g.data_offset() as usize;
    let name_at = one.windows(2).rposition(|w| w == b"\x01\x00").unwrap(); // name length 1
    let dims_at = name_at + 8 + 1 + 4;
    let type_at = dims_at + 16;
    let off_at = type_at + 4;
    let patch = |at: usize, v: &[u8]| {
        let mut b = one.clone();
        b[at..at + v.len()].copy_from_slice(v);
        Gguf::parse(&b).unwrap_err()
    };
    assert!(matches!(
        patch(type_at, &99u32.to_le_bytes()),
        GgufError::UnknownTensorType { type_id: 99, .. }
    ));
    assert!(matches!(patch(type_at, &4u32.to_le_bytes()), GgufError::UnknownTensorType { .. }));
    assert!(matches!(patch(dims_at - 4, &0u32.to_le_bytes()), GgufError::BadDimCount { .. }));
    assert!(matches!(patch(dims_at - 4, &5u32.to_le_bytes()), GgufError::BadDimCount { .. }));
    assert!(matches!(patch(dims_at, &33u64.to_le_bytes()), GgufError::BadShape { .. }));
    assert!(matches!(patch(dims_at + 8, &(1u64 << 62).to_le_bytes()), GgufError::BadShape { .. }));
    assert!(matches!(
        patch(dims_at + 8, &(1u64 << 40).to_le_bytes()),
        GgufError::TensorOutOfBounds { .. }
    ));
    assert!(matches!(patch(off_at, &3u64.to_le_bytes()), GgufError::Misaligned { .. }));
    assert!(matches!(
        patch(off_at, &(u64::MAX - 31).to_le_bytes()),
        GgufError::TensorOutOfBounds { .. }
    ));
    assert!(matches!(
        Gguf::parse(&one[..hdr + 10]).unwrap_err(),
        GgufError::TensorOutOfBounds { .. }
    ));
    assert!(matches!(Gguf::parse(&one[..hdr - 1]).unwrap_err(), GgufError::Truncated { .. }));

    // Two tensors claiming the same bytes.
    let two = bytes(&|w| {
        w.add_tensor("a", &[32], GgmlType::Q8_0).unwrap();
        w.add_tensor("b", &[32], GgmlType::Q8_0).unwrap();
    });
    let mut overlap = two.clone();
    // The last u64 of the tensor table is b's offset (34 bytes of a, aligned to 64): make it 0.
    let table_end = two.windows(8).rposition(|w| w == 64u64.to_le_bytes()).unwrap();
    overlap[table_end..table_end + 8].copy_from_slice(&0u64.to_le_bytes());
    assert!(matches!(Gguf::parse(&overlap).unwrap_err(), GgufError::TensorOverlap { .. }));

    let mut dup = two.clone();
    let b_name = two.windows(9).rposition(|w| w == b"\x01\x00\x00\x00\x00\x00\x00\x00b").unwrap();
    dup[b_name + 8] = b'a';
    assert!(matches!(Gguf::parse(&dup).unwrap_err(), GgufError::DuplicateTensor { .. }));
}

#[test]
fn duplicate_keys_and_bad_values_are_rejected() {
    let mut w = GgufWriter::new();
    w.add_kv("k1", O::U8(1)).unwrap();
    w.add_kv("k2", O::U8(2)).unwrap();
    let mut b = w.to_bytes(&[]).unwrap();
    let at = b.windows(2).position(|x| x == b"k2").unwrap();
    b[at + 1] = b'1';
    assert!(matches!(Gguf::parse(&b).unwrap_err(), GgufError::DuplicateKey { .. }));

    let mut w = GgufWriter::new();
    w.add_kv("flag", O::Bool(true)).unwrap();
    let mut b = w.to_bytes(&[]).unwrap();
    let last = b.iter().rposition(|&x| x == 1).unwrap();
    b[last] = 2;
    assert!(matches!(Gguf::parse(&b).unwrap_err(), GgufError::InvalidBool { value: 2, .. }));

    let mut w = GgufWriter::new();
    w.add_kv(keys::GENERAL_ALIGNMENT, O::U32(3)).unwrap();
    assert!(matches!(
        Gguf::parse(&w.to_bytes(&[]).unwrap()).unwrap_err(),
        GgufError::BadAlignment { .. }
    ));

    let mut w = GgufWriter::new();
    w.add_kv("x", O::U32(0)).unwrap();
    let mut b = w.to_bytes(&[]).unwrap();
    let type_at = b.windows(1).position(|x| x == b"x").unwrap() + 1;
    b[type_at] = 13;
    assert!(matches!(
        Gguf::parse(&b).unwrap_err(),
        GgufError::UnknownValueType { type_id: 13, .. }
    ));

    // Arrays nested past the limit.
    let mut v = O::Array(ValueType::U8, vec![]);
    for _ in 0..10 {
        v = O::Array(ValueType::Array, vec![v]);
    }
    let mut w = GgufWriter::new();
    w.add_kv("deep", v).unwrap();
    assert!(matches!(
        Gguf::parse(&w.to_bytes(&[]).unwrap()).unwrap_err(),
        GgufError::NestingTooDeep { .. }
    ));

    // Invalid UTF-8 in a key.
    let mut w = GgufWriter::new();
    w.add_kv("ab", O::U8(0)).unwrap();
    let mut b = w.to_bytes(&[]).unwrap();
    let at = b.windows(2).position(|x| x == b"ab").unwrap();
    b[at] = 0xff;
    assert!(matches!(Gguf::parse(&b).unwrap_err(), GgufError::InvalidUtf8 { .. }));
}

#[test]
fn every_truncation_of_a_small_file_is_an_error_not_a_panic() {
    let bytes = sample_bytes();
    let header = Gguf::parse(&bytes).unwrap().data_offset() as usize;
    for n in 0..bytes.len() {
        let r = Gguf::parse(&bytes[..n]);
        assert!(r.is_err(), "prefix of {n} bytes (header {header}) parsed");
    }
}
