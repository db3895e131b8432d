//! The CSV fast path's AVX-512 kernels: every separator of a piece of text found and listed
//! 64 bytes at a time, and plain decimals (`-?digits[.digits]`, at most 15 digits) read
//! eight fields at a time, four to a 512-bit vector, one 16-byte lane each.
//!
//! The numbers are the correctly rounded f32 values, as [`super::decimal::float`] gives
//! them: the digits form an integer N < 10^15, exact in f64, which is multiplied by the f64
//! nearest to a power of ten (a multiplication, where the scalar path divides: a vector
//! division costs as much as all the rest). That product is within two units of f64's last
//! bit of the exact value, so its rounding to f32 is the exact value's unless it lies that
//! close to the midpoint between two f32 values: such fields, and any field that is not a
//! plain decimal, go to the caller's general routine, one at a time.

use std::arch::x86_64::*;

/// Compiles functions for the features the kernels use; call them only while holding an
/// [`Avx512`].
macro_rules! with_avx512 {
    ($($function:item)*) => {
        $(
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi2,bmi1,bmi2")]
            $function
        )*
    };
}
pub(crate) use with_avx512;

/// Proof that this CPU has what the kernels use (AVX-512 F, BW, VL, DQ and VBMI2, BMI1 and
/// BMI2): only [`Avx512::detect`] makes one.
#[derive(Debug, Clone, Copy)]
pub struct Avx512(());

impl Avx512 {
    pub fn detect() -> Option<Self> {
        use std::sync::OnceLock;
        static AVAILABLE: OnceLock<bool> = OnceLock::new();
        let available = *AVAILABLE.get_or_init(|| {
            std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vl")
                && std::is_x86_feature_detected!("avx512dq")
                && std::is_x86_feature_detected!("avx512vbmi2")
                && std::is_x86_feature_detected!("bmi1")
                && std::is_x86_feature_detected!("bmi2")
        });
        available.then_some(Avx512(()))
    }

    /// Lists the positions of `text`'s commas and line ends in `separators` and those of its
    /// line ends alone in `line_ends`, both in order.
    ///
    /// # Panics
    /// If `text` is longer than [`MAX_TEXT`].
    #[inline]
    pub fn separators(self, text: &[u8], separators: &mut Vec<u32>, line_ends: &mut Vec<u32>) {
        // SAFETY: `self` proves the CPU has the features.
        unsafe { find_separators(text, separators, line_ends) }
    }

    /// The numbers of the consecutive fields that start at `start` and end at `ends` (each
    /// field starts one past the previous field's end) in `text`, appended to `out`: plain
    /// decimals read by the kernel, any other field by `other(start, end)`. `None`, with
    /// `out` unchanged, if `other` gives `None` or a field lies outside `text`.
    #[inline]
    pub fn floats(
        self,
        text: &[u8],
        start: usize,
        ends: &[u32],
        out: &mut Vec<f32>,
        other: impl Fn(usize, usize) -> Option<f32>,
    ) -> Option<()> {
        // SAFETY: `self` proves the CPU has the features.
        unsafe { read_floats(text, start, ends, out, other) }
    }
}

/// The longest text [`Avx512::separators`] indexes: positions are u32.
pub const MAX_TEXT: usize = u32::MAX as usize - 64;

/// The lowest and highest bits of each 16-bit lane of a 64-bit mask (one lane per field).
const LANE_LOW: u64 = 0x0001_0001_0001_0001;
const LANE_HIGH: u64 = 0x8000_8000_8000_8000;
/// `TENTHS[s]`: the f64 nearest to `10^(s - 15)`, what multiplies the digits of a field
/// whose point (or end) is `s` bytes in.
const TENTHS: [f64; 16] = {
    let mut powers = [1.0; 16];
    let mut s = 0;
    while s < 15 {
        let mut power = 1.0;
        let mut e = 0;
        while e < 15 - s {
            power *= 10.0;
            e += 1;
        }
        powers[s] = 1.0 / power;
        s += 1;
    }
    powers
};
/// How far from an f32 midpoint, in units of the last of f64's 53 bits, a product must be
/// for its f32 rounding to be the exact value's: the reciprocal and the product each err
/// by at most half a unit relative, so the product is within 2 units of the exact value.
const MIDPOINT_MARGIN: i64 = 4;
/// What the unused lanes of a group read: a plain `0`.
static ZERO: [u8; 1] = *b"0";

/// A field: where its bytes start, and how many there are.
type Field = (*const u8, usize);

with_avx512! {
    #[inline]
    fn find_separators(text: &[u8], separators: &mut Vec<u32>, line_ends: &mut Vec<u32>) {
        assert!(text.len() <= MAX_TEXT, "text too long to index");
        separators.clear();
        line_ends.clear();
        // Positions are written 16 at a time, up to 15 past those found.
        separators.reserve(text.len() + 16);
        let out = separators.as_mut_ptr();
        let mut count = 0usize;
        let offsets = _mm512_set_epi8(
            63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43,
            42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22,
            21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
        );
        for at in (0..text.len()).step_by(64) {
            let present = match text.len() - at {
                64.. => u64::MAX,
                n => (1u64 << n) - 1,
            };
            // SAFETY: the mask covers only bytes of `text`; masked-out bytes are not read.
            let block = unsafe { _mm512_maskz_loadu_epi8(present, text.as_ptr().add(at).cast()) };
            let ends = _mm512_cmpeq_epi8_mask(block, _mm512_set1_epi8(b'\n' as i8));
            let marks = _mm512_cmpeq_epi8_mask(block, _mm512_set1_epi8(b',' as i8)) | ends;
            let mut packed = _mm512_maskz_compress_epi8(marks, offsets);
            let base = _mm512_set1_epi32(at as i32);
            let found = marks.count_ones() as usize;
            let mut written = 0;
            loop {
                let sixteen =
                    _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm512_castsi512_si128(packed)), base);
                // SAFETY: at most `count + found + 15 <= text.len() + 16` entries, reserved.
                unsafe { _mm512_storeu_si512(out.add(count + written).cast(), sixteen) };
                written += 16;
                if written >= found {
                    break;
                }
                packed = _mm512_alignr_epi32::<4>(_mm512_setzero_si512(), packed);
            }
            count += found;
            let mut ends = ends;
            while ends != 0 {
                line_ends.push(at as u32 + ends.trailing_zeros());
                ends &= ends - 1;
            }
        }
        // SAFETY: the first `count` entries were written.
        unsafe { separators.set_len(count) };
    }

    /// Four fields, one per 16-byte lane, read as decimals: the digits as an integer N in
    /// the low 64 bits of each lane, the position of the point (or end) in the low 64 bits
    /// of each lane, a bit at the start of each lane whose field is negative, and a bit per
    /// lane (bit i for lane i) whose field is not a plain decimal (the rest of that lane is
    /// then meaningless).
    ///
    /// # Safety
    /// Each field's bytes must be readable.
    #[inline]
    unsafe fn four_decimals(fields: &[Field; 4]) -> (__m512i, __m512i, u64, u8) {
        let mut bytes = _mm512_setzero_si512();
        let mut inside = 0u64;
        let mut too_long = 0u8;
        for (lane, &(start, len)) in fields.iter().enumerate() {
            too_long |= u8::from(len > 16) << lane;
            let mask = u64::from(_bzhi_u32(0xFFFF, len as u32)) << (16 * lane);
            inside |= mask;
            // SAFETY: the mask covers the field's bytes (its first 16), which are readable;
            // masked-out bytes are not read, so the address, 16 bytes a lane before the
            // field, is only an origin.
            bytes = unsafe {
                _mm512_mask_loadu_epi8(bytes, mask, start.wrapping_sub(16 * lane).cast())
            };
        }
        // A minus sign leading a lane is dropped: that lane's bytes move down one.
        let minus = _mm512_mask_cmpeq_epi8_mask(inside & LANE_LOW, bytes, _mm512_set1_epi8(b'-' as i8));
        let negative = minus.wrapping_mul(0xFFFF);
        let bytes = _mm512_mask_blend_epi8(negative, bytes, _mm512_bsrli_epi128::<1>(bytes));
        let inside = (inside & !negative) | ((inside >> 1) & negative & !LANE_HIGH);

        let values = _mm512_maskz_sub_epi8(inside, bytes, _mm512_set1_epi8(b'0' as i8));
        let points = _mm512_mask_cmpeq_epi8_mask(inside, bytes, _mm512_set1_epi8(b'.' as i8));
        let others = _mm512_mask_cmpgt_epu8_mask(inside, values, _mm512_set1_epi8(9));
        // Per lane: the byte after the last (none for 16 bytes), then the first of it, the
        // point and the lane's top bit, which keeps every lane from zero.
        let end = ((inside << 1) | LANE_LOW) & !inside;
        let boundary = points | end | LANE_HIGH;
        let first = boundary & !boundary.wrapping_sub(LANE_LOW);
        let digits = inside & !points;
        let declined = too_long
            | nonzero_lanes(others ^ points)
            | nonzero_lanes(points & !first)
            | !nonzero_lanes(digits)
            | nonzero_lanes(digits & LANE_HIGH) & !nonzero_lanes(points);
        // Bytes up to the point (or end) move up one: the point disappears and a zero
        // leads every lane. Then 16 digits to an integer: pairs, quads, octets.
        let moved = first.wrapping_sub(LANE_LOW) | first;
        let frame = _mm512_mask_blend_epi8(moved, values, _mm512_bslli_epi128::<1>(values));
        let pairs = _mm512_maddubs_epi16(frame, _mm512_set1_epi16(0x010A));
        let quads = _mm512_madd_epi16(pairs, _mm512_set1_epi32(0x0001_0064));
        let quads = _mm512_packus_epi32(quads, quads);
        let octets = _mm512_madd_epi16(quads, _mm512_set1_epi32(0x0001_2710));
        let number = _mm512_add_epi64(
            _mm512_mul_epu32(octets, _mm512_set1_epi64(100_000_000)),
            _mm512_srli_epi64::<32>(octets),
        );
        let in_lane = _mm512_set4_epi32(0x0F0E_0D0C, 0x0B0A_0908, 0x0706_0504, 0x0302_0100);
        let split = _mm512_sad_epu8(_mm512_maskz_mov_epi8(first, in_lane), _mm512_setzero_si512());
        let split = _mm512_add_epi64(split, _mm512_bsrli_epi128::<8>(split));
        (number, split, minus, declined & 0xF)
    }

    /// A bit per 16-bit lane of `x` (bit i for lane i), set where the lane is not zero.
    #[inline]
    fn nonzero_lanes(x: u64) -> u8 {
        let low = !LANE_HIGH;
        _pext_u64((((x & low) + low) | x) & LANE_HIGH, LANE_HIGH) as u8
    }

    #[inline]
    fn read_floats(
        text: &[u8],
        mut start: usize,
        ends: &[u32],
        out: &mut Vec<f32>,
        other: impl Fn(usize, usize) -> Option<f32>,
    ) -> Option<()> {
        out.reserve(ends.len());
        let mut written = out.len();
        let firsts = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
        // SAFETY: `TENTHS` has 16 values.
        let tenths = unsafe {
            [_mm512_loadu_pd(TENTHS.as_ptr()), _mm512_loadu_pd(TENTHS.as_ptr().add(8))]
        };
        for eight in ends.chunks(8) {
            let mut bounds = [(0, 0); 8];
            let mut groups: [[Field; 4]; 2] = [[(ZERO.as_ptr(), ZERO.len()); 4]; 2];
            for (i, &end) in eight.iter().enumerate() {
                let end = end as usize;
                if end < start || end > text.len() {
                    return None;
                }
                bounds[i] = (start, end);
                // SAFETY: `start <= end <= text.len()`.
                groups[i / 4][i % 4] = (unsafe { text.as_ptr().add(start) }, end - start);
                start = end + 1;
            }
            // SAFETY: every field is a slice of `text` or `ZERO`.
            let (low, low_split, low_minus, low_declined) = unsafe { four_decimals(&groups[0]) };
            let (high, high_split, high_minus, high_declined) = unsafe { four_decimals(&groups[1]) };
            let number = _mm512_permutex2var_epi64(low, firsts, high);
            let split = _mm512_permutex2var_epi64(low_split, firsts, high_split);
            let scale = _mm512_permutex2var_pd(tenths[0], split, tenths[1]);
            let wide = _mm512_mul_pd(_mm512_cvtepu64_pd(number), scale);
            // The 29 bits f32 drops, centred on the midpoint.
            let dropped = _mm512_sub_epi64(
                _mm512_and_si512(_mm512_castpd_si512(wide), _mm512_set1_epi64(0x1FFF_FFFF)),
                _mm512_set1_epi64(0x1000_0000 - MIDPOINT_MARGIN),
            );
            let midpoints =
                _mm512_cmplt_epu64_mask(dropped, _mm512_set1_epi64(2 * MIDPOINT_MARGIN + 1));
            let negative = (_pext_u64(low_minus, LANE_LOW) | _pext_u64(high_minus, LANE_LOW) << 4) as u8;
            let narrow = _mm256_castps_si256(_mm512_cvtpd_ps(wide));
            let signed = _mm256_mask_or_epi32(narrow, negative, narrow, _mm256_set1_epi32(i32::MIN));
            let used = ((1u16 << eight.len()) - 1) as u8;
            // SAFETY: the masked store writes `eight.len()` values from `written`, within the
            // `ends.len()` reserved past the length.
            let to = unsafe { out.as_mut_ptr().add(written) };
            unsafe { _mm256_mask_storeu_epi32(to.cast(), used, signed) };
            let mut declined = (low_declined | high_declined << 4 | midpoints) & used;
            while declined != 0 {
                let i = declined.trailing_zeros() as usize;
                let (from, end) = bounds[i];
                // SAFETY: `i < eight.len()`, within the reserved values.
                unsafe { to.add(i).write(other(from, end)?) };
                declined &= declined - 1;
            }
            written += eight.len();
        }
        // SAFETY: every value up to `written` was stored.
        unsafe { out.set_len(written) };
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::decimal::NOT_PLAIN;
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The kernels' CPU features: the tests run only where the build found them
    /// (`host_avx512`, build.rs), and are ignored elsewhere.
    fn cpu() -> Avx512 {
        Avx512::detect().expect("build.rs found AVX-512 on this machine")
    }

    fn general(field: &str) -> Option<f32> {
        fast_float2::parse(field).ok()
    }

    /// The numbers of the fields of `line` (comma-separated), those the kernel declines
    /// from `other`, or `None`; checks that `None` leaves the output as it was.
    fn numbers(
        cpu: Avx512,
        line: &str,
        other: impl Fn(usize, usize) -> Option<f32>,
    ) -> Option<Vec<f32>> {
        let ends: Vec<u32> = line
            .bytes()
            .enumerate()
            .filter(|&(_, b)| b == b',')
            .map(|(i, _)| i as u32)
            .chain([line.len() as u32])
            .collect();
        let mut out = vec![7.5];
        let taken = cpu.floats(line.as_bytes(), 0, &ends, &mut out, other);
        if taken.is_none() {
            assert_eq!(out, [7.5], "{line}");
            return None;
        }
        assert_eq!(out.len(), ends.len() + 1);
        Some(out[1..].to_vec())
    }

    /// The kernel's numbers for the fields of `line`, or `None` if it declines any.
    fn kernel(cpu: Avx512, line: &str) -> Option<Vec<f32>> {
        numbers(cpu, line, |_, _| None)
    }

    /// A plain decimal of at most 15 digits: one of several kinds of value.
    fn plain(rng: &mut impl Rng, kind: usize) -> String {
        match kind {
            0 => rng.random::<f32>().to_string(),
            1 => (rng.random::<f32>() * 2e4 - 1e4).to_string(),
            2 => {
                let digits: String = (0..rng.random_range(1..16))
                    .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                    .collect();
                let point = rng.random_range(0..=digits.len());
                let sign = if rng.random() { "-" } else { "" };
                match point {
                    p if p == digits.len() && rng.random() => format!("{sign}{digits}"),
                    p => format!("{sign}{}.{}", &digits[..p], &digits[p..]),
                }
            }
            _ => {
                // Within a few units of f64's last bit of the midpoint between two f32
                // values: 15 digits of it.
                let x = f32::from_bits(rng.random_range(0x3A83_126F..0x4E6E_6B28u32));
                let midpoint = (f64::from(x) + f64::from(f32::from_bits(x.to_bits() + 1))) / 2.0;
                let whole = midpoint.abs().log10().floor().max(0.0) as usize + 1;
                format!("{midpoint:.*}", 15 - whole)
            }
        }
    }

    #[test]
    #[cfg_attr(
        not(host_avx512),
        ignore = "this CPU lacks AVX-512: the kernels cannot run"
    )]
    fn floats_agree_with_the_general_parser_or_decline() {
        let cpu = cpu();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let (mut lines, mut taken, mut near_midpoints) = (0, 0, 0);
        for case in 0..60_000 {
            let kind = case % 4;
            let fields: Vec<String> = (0..rng.random_range(1..20))
                .map(|_| plain(&mut rng, kind))
                .collect();
            let line = fields.join(",");
            lines += 1;
            match kernel(cpu, &line) {
                Some(values) => {
                    taken += 1;
                    for (field, value) in fields.iter().zip(values) {
                        assert_eq!(
                            Some(value.to_bits()),
                            general(field).map(f32::to_bits),
                            "{field} in {line}"
                        );
                    }
                }
                None => near_midpoints += usize::from(kind == 3),
            }
        }
        // Every kind but the near-midpoint one is declined only for a rare f64 result near
        // a midpoint; most near-midpoint rows have one.
        assert!(taken > lines * 5 / 8, "took {taken} of {lines} rows");
        assert!(
            near_midpoints > lines / 8,
            "declined {near_midpoints} near-midpoint rows"
        );
    }

    #[test]
    #[cfg_attr(
        not(host_avx512),
        ignore = "this CPU lacks AVX-512: the kernels cannot run"
    )]
    fn floats_decline_what_they_cannot_read_exactly() {
        let cpu = cpu();
        let more = [
            "1-",
            "-1234567890123456",
            ".1234567890123456",
            "1\r",
            "0x1",
            "8.000000476837158",
        ];
        for bad in NOT_PLAIN.into_iter().chain(more) {
            for line in [
                bad.to_string(),
                format!("1.5,{bad},2"),
                format!("0,0,0,0,0,0,0,0,{bad}"),
            ] {
                assert_eq!(kernel(cpu, &line), None, "{line:?}");
            }
        }
        assert_eq!(general("8.000000476837158"), Some(8.0));
        let line = "-0.5,-0,3.,.25,123.456,-123456789012345,0,90071992547409.3,0.00000000000001,7";
        let expected: Vec<u32> = line
            .split(',')
            .map(|f| general(f).unwrap().to_bits())
            .collect();
        let found: Vec<u32> = kernel(cpu, line)
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(found, expected);
        assert_eq!(found[1], (-0.0f32).to_bits());
    }

    #[test]
    #[cfg_attr(
        not(host_avx512),
        ignore = "this CPU lacks AVX-512: the kernels cannot run"
    )]
    fn declined_fields_alone_go_to_the_general_routine() {
        let cpu = cpu();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(19);
        let others = [
            "0.33557800000000004",
            "1e5",
            "+2",
            "-1.5E-3",
            "12345678901234567",
            " 1",
        ];
        for _ in 0..20_000 {
            let fields: Vec<String> = (0..rng.random_range(1..20))
                .map(|_| match rng.random_range(0..6) {
                    0 => others[rng.random_range(0..others.len())].to_string(),
                    kind => plain(&mut rng, kind % 4),
                })
                .collect();
            let line = fields.join(",");
            let from_general = std::cell::Cell::new(0);
            let found = numbers(cpu, &line, |start, end| {
                from_general.set(from_general.get() + 1);
                general(&line[start..end])
            });
            let expected: Option<Vec<u32>> = fields
                .iter()
                .map(|f| general(f).map(f32::to_bits))
                .collect();
            assert_eq!(
                found.map(|v| v.iter().map(|x| x.to_bits()).collect()),
                expected,
                "{line}"
            );
            // Only the fields the kernel cannot read, and the rare near-midpoint ones, go
            // to the general routine.
            if expected.is_some() {
                let others = fields.iter().filter(|f| kernel(cpu, f).is_none()).count();
                assert_eq!(from_general.get(), others, "{line}");
            }
        }
    }

    #[test]
    #[cfg_attr(
        not(host_avx512),
        ignore = "this CPU lacks AVX-512: the kernels cannot run"
    )]
    fn separators_are_every_comma_and_line_end() {
        let cpu = cpu();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
        let (mut separators, mut line_ends) = (vec![9], vec![9]);
        for len in 0..400 {
            // Mostly separators in some texts: more than 16 and 32 to a block.
            let dense = rng.random_range(1..6);
            let text: Vec<u8> = (0..len)
                .map(|_| match rng.random_range(0..dense) {
                    0 => b",\n0a\r"[rng.random_range(0..5)],
                    _ => b',',
                })
                .collect();
            cpu.separators(&text, &mut separators, &mut line_ends);
            let expected: Vec<u32> = (0..len as u32)
                .filter(|&i| b",\n".contains(&text[i as usize]))
                .collect();
            assert_eq!(separators, expected, "{text:?}");
            let expected: Vec<u32> = (0..len as u32)
                .filter(|&i| text[i as usize] == b'\n')
                .collect();
            assert_eq!(line_ends, expected, "{text:?}");
        }
    }
}
