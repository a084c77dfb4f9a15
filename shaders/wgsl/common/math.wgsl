// Transcendentals with the saturation the CPU oracle has: some implementations compute tanh as
// sinh / cosh, which overflows to NaN for large arguments; f32 tanh is ±1 beyond |x| = 10.
fn tanh_sat(x: f32) -> f32 {
    if abs(x) >= 10.0 {
        return sign(x);
    }
    return tanh(x);
}

// A finite stand-in for -∞ (some implementations may assume no infinities).
const NEG_BIG: f32 = -3.0e38;

// The linear index of a workgroup in a 2D dispatch (x varies fastest): the host spreads
// more than 65535 workgroups over y.
fn flat_group(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}
