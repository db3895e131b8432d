//! Fast paths for the plain decimals that fill CTR CSVs (`123`, `-0.0123`), given where a
//! field starts and ends: a category index is read as one 64-bit word, a number as one
//! 16-byte SSE2 vector, converted without a branch per digit, so that fields parse
//! independently of one another. Anything unusual gives `None`, and the caller parses the
//! field with the general (checked) routine; they never return a value that differs from
//! the general routine's. Also the separator scan that finds the fields.

/// Powers of ten, all exact in f64.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// `bytes[start..end]` as a category index: 1 to 8 digits.
#[inline]
pub fn index(bytes: &[u8], start: usize, end: usize) -> Option<u32> {
    let len = end - start;
    if len == 0 || len > 8 {
        return None;
    }
    let word = match bytes.get(start..start + 8) {
        Some(eight) => u64::from_le_bytes(eight.try_into().expect("8 bytes")),
        None => {
            let mut padded = [0u8; 8];
            padded[..len].copy_from_slice(&bytes[start..end]);
            u64::from_le_bytes(padded)
        }
    };
    // Keep the field's bytes as the high bytes: an 8-digit number with leading zeros.
    let shift = 8 * (8 - len) as u32;
    let values = (word << shift).wrapping_sub(0x3030_3030_3030_3030 << shift);
    // A digit's value is at most 9: the high bit of it or of it + 0x76 marks anything else;
    // borrows and carries only travel upwards from a byte that is already marked.
    let others = (values | values.wrapping_add(0x7676_7676_7676_7676)) & 0x8080_8080_8080_8080;
    if others != 0 {
        return None;
    }
    let pairs = values.wrapping_mul(10).wrapping_add(values >> 8);
    let low = 0x0000_00FF_0000_00FF;
    let quads = (pairs & low)
        .wrapping_mul(100 + (1_000_000 << 32))
        .wrapping_add(((pairs >> 16) & low).wrapping_mul(1 + (10_000 << 32)));
    Some((quads >> 32) as u32)
}

/// `bytes[start..end]`, of the form `-?digits[.digits]` (or `.digits`, `digits.`) with at
/// most 15 digits, as the nearest f32.
///
/// The digits, with a zero in front, form an integer N < 10^15 < 2^53 and a power of ten e
/// <= 15, so `N / 10^e` is one correctly rounded f64 operation (and, N being 0 or at least
/// 1, never in f32's subnormal range). Rounding that f64 to f32 is the correctly rounded
/// f32 unless the f64 landed exactly on a midpoint between two f32 values (then the true
/// value may lie on either side), so those go to the general routine.
#[inline]
pub fn float(bytes: &[u8], start: usize, end: usize) -> Option<f32> {
    let (n, e, negative) = sse2::decimal_digits(bytes, start, end)?;
    // e <= 15: the mask only spares a bounds check.
    let wide = n as i64 as f64 / POW10[e & 15];
    if wide.to_bits() & 0x1FFF_FFFF == 0x1000_0000 {
        return None;
    }
    let sign = u32::from(negative) << 31;
    Some(f32::from_bits((wide as f32).to_bits() | sign))
}

/// The positions of the commas and line ends of a text, in order, found 64 bytes at a
/// time.
pub struct Separators<'a> {
    text: &'a [u8],
    block: usize,
    /// The block's separators not yet returned, a bit per byte.
    marks: u64,
}

impl<'a> Separators<'a> {
    /// The separators at or after `from`.
    pub fn new(text: &'a [u8], from: usize) -> Self {
        Separators {
            text,
            block: from,
            marks: sse2::separator_marks(text, from),
        }
    }
}

impl Iterator for Separators<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.marks == 0 {
            self.block += 64;
            if self.block >= self.text.len() {
                return None;
            }
            self.marks = sse2::separator_marks(self.text, self.block);
        }
        let at = self.block + self.marks.trailing_zeros() as usize;
        self.marks &= self.marks - 1;
        Some(at)
    }
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::*;

    // SAFETY (every `unsafe` below): SSE2 is part of the x86_64 baseline, and the only
    // memory access is `load`'s, from 16 in-bounds bytes.

    /// The 16 bytes from `start`, zero past the end of `bytes`.
    #[inline]
    fn load(bytes: &[u8], start: usize) -> __m128i {
        let mut padded = [0u8; 16];
        let sixteen = match bytes.get(start..start + 16) {
            Some(sixteen) => sixteen,
            None => {
                let tail = bytes.get(start..).unwrap_or_default();
                padded[..tail.len()].copy_from_slice(tail);
                &padded
            }
        };
        unsafe { _mm_loadu_si128(sixteen.as_ptr().cast()) }
    }

    /// A mask of the first `n` (<= 16) bytes: a load from a sliding window, cheaper than
    /// broadcasting `n` and comparing.
    #[inline]
    fn first_bytes(n: usize) -> __m128i {
        const WINDOW: [u8; 32] = {
            let mut window = [0; 32];
            let mut i = 0;
            while i < 16 {
                window[i] = 0xFF;
                i += 1;
            }
            window
        };
        load(&WINDOW, 16 - n)
    }

    /// `bytes[start..end]` (at most 16 bytes) as `-?digits[.digits]` (at most 15 digits):
    /// the digits as an integer N, e <= 15 such that the magnitude is N / 10^e, and the sign.
    #[inline]
    pub fn decimal_digits(bytes: &[u8], start: usize, end: usize) -> Option<(u64, usize, bool)> {
        let len = end.checked_sub(start)?;
        if len.wrapping_sub(1) >= 16 {
            return None;
        }
        unsafe {
            let raw = load(bytes, start);
            let negative = _mm_cvtsi128_si32(raw) as u8 == b'-';
            // Drop a leading minus: all-ones or all-zeros selects the shifted bytes.
            let drop = first_bytes(16 * usize::from(negative));
            let text = _mm_or_si128(
                _mm_and_si128(drop, _mm_srli_si128(raw, 1)),
                _mm_andnot_si128(drop, raw),
            );
            let len = len - usize::from(negative);
            let inside = first_bytes(len);
            let points = _mm_movemask_epi8(_mm_and_si128(
                _mm_cmpeq_epi8(text, _mm_set1_epi8(b'.' as i8)),
                inside,
            )) as u32;
            let values = _mm_and_si128(_mm_sub_epi8(text, _mm_set1_epi8(b'0' as i8)), inside);
            let above_nine = _mm_subs_epu8(values, _mm_set1_epi8(9));
            let others =
                !_mm_movemask_epi8(_mm_cmpeq_epi8(above_nine, _mm_setzero_si128())) as u32 & 0xFFFF;
            // Every byte a digit, but for one point.
            let first_point = points & points.wrapping_neg();
            if others != first_point {
                return None;
            }
            // Branch-free from here: whether a field has a point is unpredictable.
            let has_point = usize::from(points != 0);
            let digits = len - has_point;
            if digits == 0 || digits > 15 {
                return None;
            }
            // Move the digits before the point (all of them if none) up one byte: the point
            // disappears and a leading zero appears in byte 0.
            let split = (points.trailing_zeros() as usize).min(len);
            let moved = first_bytes(split + 1);
            let frame = _mm_or_si128(
                _mm_and_si128(moved, _mm_slli_si128(values, 1)),
                _mm_andnot_si128(moved, values),
            );
            // 16 digit values (first digit first) to an integer: pairs, quads, octets.
            let zero = _mm_setzero_si128();
            let tens = _mm_setr_epi16(10, 1, 10, 1, 10, 1, 10, 1);
            let pairs = _mm_packs_epi32(
                _mm_madd_epi16(_mm_unpacklo_epi8(frame, zero), tens),
                _mm_madd_epi16(_mm_unpackhi_epi8(frame, zero), tens),
            );
            let hundreds = _mm_setr_epi16(100, 1, 100, 1, 100, 1, 100, 1);
            let quads = _mm_madd_epi16(pairs, hundreds);
            let quads = _mm_packs_epi32(quads, quads);
            let ten_thousands = _mm_setr_epi16(10_000, 1, 10_000, 1, 10_000, 1, 10_000, 1);
            let octets = _mm_madd_epi16(quads, ten_thousands);
            let first = _mm_cvtsi128_si32(octets) as u64;
            let second = _mm_cvtsi128_si32(_mm_srli_si128(octets, 4)) as u64;
            let fraction = len - split - has_point;
            Some((
                first * 100_000_000 + second,
                fraction + 15 - digits,
                negative,
            ))
        }
    }

    /// A bit per byte of `text[at..at + 64]` that is a comma or a line end.
    #[inline]
    pub fn separator_marks(text: &[u8], at: usize) -> u64 {
        (0..4).fold(0, |marks, quarter| {
            let sixteen = unsafe {
                let block = load(text, at + 16 * quarter);
                let commas = _mm_cmpeq_epi8(block, _mm_set1_epi8(b',' as i8));
                let ends = _mm_cmpeq_epi8(block, _mm_set1_epi8(b'\n' as i8));
                _mm_movemask_epi8(_mm_or_si128(commas, ends)) as u16
            };
            marks | u64::from(sixteen) << (16 * quarter)
        })
    }
}

/// Elsewhere than x86_64 every number takes the general routine.
#[cfg(not(target_arch = "x86_64"))]
mod sse2 {
    pub fn decimal_digits(_: &[u8], _: usize, _: usize) -> Option<(u64, usize, bool)> {
        None
    }

    /// A bit per byte of `text[at..at + 64]` that is a comma or a line end.
    pub fn separator_marks(text: &[u8], at: usize) -> u64 {
        let block = text.get(at..).unwrap_or_default();
        block
            .iter()
            .take(64)
            .enumerate()
            .filter(|&(_, &b)| b == b',' || b == b'\n')
            .fold(0, |marks, (i, _)| marks | 1 << i)
    }
}

/// Fields that are not plain decimals of at most 15 digits: the fast routines decline them.
#[cfg(test)]
pub(super) const NOT_PLAIN: [&str; 14] = [
    "",
    "-",
    ".",
    "-.",
    "+1",
    "1e5",
    "nan",
    "inf",
    " 1",
    "1 ",
    "1.2.3",
    "--1",
    "1234567890123456",
    "12345678901234567",
];

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn general(text: &str) -> Option<f32> {
        fast_float2::parse(text).ok()
    }

    fn fast(text: &str) -> Option<f32> {
        float(text.as_bytes(), 0, text.len())
    }

    #[test]
    fn index_reads_plain_digits_only() {
        assert_eq!(index(b"x,1234567,", 2, 9), Some(1_234_567));
        assert_eq!(index(b"12345678", 0, 8), Some(12_345_678));
        assert_eq!(index(b"0", 0, 1), Some(0));
        for bad in ["", "123456789", " 1", "1 ", "-1", "1.0", "a", "1/"] {
            assert_eq!(index(bad.as_bytes(), 0, bad.len()), None, "{bad:?}");
        }
    }

    #[test]
    fn index_agrees_with_reading_digit_by_digit() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let alphabet = b"0123456789,.-/: \x00\xff";
        for _ in 0..100_000 {
            let text: Vec<u8> = (0..rng.random_range(0..20))
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            let end = rng.random_range(0..=text.len());
            let field = &text[..end];
            let expected = (1..=8).contains(&field.len()) && field.iter().all(u8::is_ascii_digit);
            let expected = expected.then(|| {
                field
                    .iter()
                    .fold(0u32, |n, &b| n * 10 + u32::from(b - b'0'))
            });
            assert_eq!(index(&text, 0, end), expected, "{text:?} up to {end}");
        }
    }

    #[test]
    fn separators_are_every_comma_and_line_end() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for len in 0..300 {
            let text: Vec<u8> = (0..len)
                .map(|_| b",\n0a\r"[rng.random_range(0..5)])
                .collect();
            let from = rng.random_range(0..=len);
            let expected: Vec<usize> = (from..len).filter(|&i| b",\n".contains(&text[i])).collect();
            let mut separators = Separators::new(&text, from);
            let found: Vec<usize> = separators.by_ref().collect();
            assert_eq!(found, expected, "{text:?} from {from}");
            assert_eq!(separators.next(), None);
        }
    }

    #[test]
    fn float_agrees_with_the_general_parser_or_declines() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut taken = 0;
        let total = 300_000;
        for case in 0..total {
            let text = match case % 4 {
                0 => rng.random::<f32>().to_string(),
                1 => (rng.random::<f32>() * 2e4 - 1e4).to_string(),
                2 => f32::from_bits(rng.random::<u32>() & 0x7FFF_FFFF).to_string(),
                _ => {
                    let digits: String = (0..rng.random_range(1..17))
                        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                        .collect();
                    let point = rng.random_range(0..=digits.len());
                    let sign = if rng.random() { "-" } else { "" };
                    format!("{sign}{}.{}", &digits[..point], &digits[point..])
                }
            };
            // Read in place, with bytes of a following field in the 16-byte window.
            let line = format!("{text},0.5,7");
            if let Some(value) = float(line.as_bytes(), 0, text.len()) {
                assert_eq!(
                    Some(value.to_bits()),
                    general(&text).map(f32::to_bits),
                    "{text}"
                );
                taken += 1;
            }
        }
        assert!(
            taken > total / 2,
            "the fast path took only {taken} of {total}"
        );
    }

    #[test]
    fn float_declines_what_it_cannot_read_exactly() {
        for text in NOT_PLAIN {
            assert_eq!(fast(text), None, "{text:?}");
        }
        // 1 + 2^-24, the midpoint between 1 and the next f32, has 25 digits: the long way.
        assert_eq!(fast("1.000000059604644775390625"), None);
        // Double rounding: 2e-16 below 8 + 2^-21 (the midpoint between 8 and the next f32),
        // whose nearest f64 is that midpoint; the f32 is 8.
        let below = "8.000000476837158";
        assert_eq!(fast(below), None);
        assert_eq!(general(below), Some(8.0));
        assert_eq!(fast("0.00000000000001"), general("0.00000000000001"));
        assert_eq!(fast("-0.5"), Some(-0.5));
        assert_eq!(fast("-0"), Some(-0.0));
        assert_eq!(fast("3."), Some(3.0));
        assert_eq!(fast(".25"), Some(0.25));
        assert_eq!(fast("90071992547409.3"), general("90071992547409.3"));
        assert_eq!(fast("-123456789012345"), Some(-123_456_789_012_345.0));
        assert_eq!(fast("123.456"), Some(123.456));
    }
}
