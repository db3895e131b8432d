//! Elementwise `exp`, `sigmoid` and `tanh` in plain f32 arithmetic, for the synthetic
//! generator: no libm call, so loops over slices vectorise, and the generated bits do not
//! depend on which libm (or which CPU variant of it) the machine has.

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two (Cody-Waite) so that `x - n ln 2` stays exact for |n| up to 2^8.
const LN2_HIGH: f32 = 0.693_359_4;
const LN2_LOW: f32 = -2.121_944_4e-4;
/// Adding then subtracting 1.5 * 2^23 rounds an f32 of magnitude below 2^22 to an integer.
const ROUND: f32 = 12_582_912.0;

/// e^x within 2 ulp over the f32 range; 0 below -87.3, 2^128 (finite) above 88.7.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.3, 88.7);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HIGH - n * LN2_LOW;
    // Cephes' expf minimax polynomial for e^r - 1 - r on |r| <= ln2 / 2.
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    // n in [-126, 128]: build 2^n in two halves so that neither overflows the exponent.
    let n = n as i32;
    let half = n / 2;
    e * f32::from_bits(((half + 127) as u32) << 23)
        * f32::from_bits(((n - half + 127) as u32) << 23)
}

#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points() -> impl Iterator<Item = f32> {
        (-19_700..=19_700).map(|i| i as f32 * 4.4e-3)
    }

    #[test]
    fn exp_matches_f64_within_two_ulp() {
        for x in points() {
            let truth = f64::from(x).exp();
            let got = f64::from(exp(x));
            let ulp = f64::from(f32::EPSILON) * truth;
            assert!(
                (got - truth).abs() <= 2.0 * ulp,
                "exp({x}) = {got}, want {truth}"
            );
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-200.0), exp(-87.3));
        assert!(exp(200.0).is_finite());
    }

    #[test]
    fn sigmoid_and_tanh_match_f64() {
        for x in points() {
            let s = 1.0 / (1.0 + (-f64::from(x)).exp());
            assert!((f64::from(sigmoid(x)) - s).abs() <= 4e-7, "sigmoid({x})");
            let t = f64::from(x).tanh();
            assert!((f64::from(tanh(x)) - t).abs() <= 4e-7, "tanh({x})");
        }
        assert_eq!(tanh(100.0), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
    }
}
