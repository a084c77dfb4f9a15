// Exact f16 <-> f32 conversions with integer operations, so results do not depend on how an
// implementation treats subnormals or rounds (`pack2x16float` leaves the rounding open;
// the CPU oracle rounds to nearest, ties to even, as the `half` crate does).

// The f32 value of the f16 with bits `h` (low 16 bits).
fn f16_bits_to_f32(h: u32) -> f32 {
    let sign = (h & 0x8000u) << 16u;
    let e = (h >> 10u) & 0x1fu;
    let m = h & 0x3ffu;
    if e == 0u {
        // Zero or subnormal: m · 2^-24, exact in f32.
        return bitcast<f32>(sign | bitcast<u32>(f32(m) * 5.9604644775390625e-8));
    }
    if e == 31u {
        return bitcast<f32>(sign | 0x7f800000u | (m << 13u));
    }
    return bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u));
}

// The bits of `x` rounded to f16, to nearest with ties to even.
fn f32_to_f16_bits(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    let sign = (b >> 16u) & 0x8000u;
    let a = b & 0x7fffffffu;
    if a > 0x7f800000u {
        return sign | 0x7e00u;
    }
    if a >= 0x477ff000u {
        // 65520 and above round to infinity.
        return sign | 0x7c00u;
    }
    if a >= 0x38800000u {
        // Normal in f16: round the mantissa at bit 13; a carry moves into the exponent.
        let r = a + 0xfffu + ((a >> 13u) & 1u);
        return sign | ((r - 0x38000000u) >> 13u);
    }
    if a < 0x33000000u {
        return sign;
    }
    // Subnormal in f16: k · 2^-24 with k = m >> shift, rounded to nearest even.
    let e = a >> 23u;
    let m = (a & 0x7fffffu) | 0x800000u;
    let shift = 126u - e;
    var k = m >> shift;
    let rem = m & ((1u << shift) - 1u);
    let halfway = 1u << (shift - 1u);
    if rem > halfway || (rem == halfway && (k & 1u) == 1u) {
        k = k + 1u;
    }
    return sign | k;
}

// `x` rounded to f16 and back.
fn round_f16(x: f32) -> f32 {
    return f16_bits_to_f32(f32_to_f16_bits(x));
}
