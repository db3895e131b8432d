//! Dropout factors as a function of a stream's key and word position, so that any device
//! can compute any stretch of a mask on its own. A seeded stream is ChaCha8 (rand_chacha):
//! word `w` of the stream is word `w % 16` of the ChaCha8 block numbered `w / 16` under the
//! stream's key and nonce, and a block needs nothing but those three numbers. The CPU draws
//! masks through rand_chacha ([`super::dropout_mask`]); this is the same function written
//! one block at a time, as `kernels/dropout_mask.cu` computes it on a GPU (one thread per
//! block), and the tests hold it to rand_chacha's stream word for word.

use crate::rng;

/// What a block of a stream depends on besides its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamKey {
    pub key: [u32; 8],
    pub nonce: u64,
}

impl StreamKey {
    pub fn of(stream: &rng::Stream) -> Self {
        let seed = stream.get_seed();
        let mut key = [0u32; 8];
        for (word, bytes) in key.iter_mut().zip(seed.chunks_exact(4)) {
            *word = u32::from_le_bytes(bytes.try_into().expect("4 bytes"));
        }
        StreamKey {
            key,
            nonce: stream.get_stream(),
        }
    }
}

/// ChaCha's "expand 32-byte k".
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

fn quarter_round(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(16);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(12);
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(8);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(7);
}

/// The 16 words of block `block` of the ChaCha8 stream `key`: 64-bit block counter in
/// words 12-13, the nonce in words 14-15 (rand_chacha's layout).
pub fn chacha8_block(key: &StreamKey, block: u64) -> [u32; 16] {
    let mut input = [0u32; 16];
    input[..4].copy_from_slice(&SIGMA);
    input[4..12].copy_from_slice(&key.key);
    input[12] = block as u32;
    input[13] = (block >> 32) as u32;
    input[14] = key.nonce as u32;
    input[15] = (key.nonce >> 32) as u32;
    let mut state = input;
    for _ in 0..4 {
        quarter_round(&mut state, 0, 4, 8, 12);
        quarter_round(&mut state, 1, 5, 9, 13);
        quarter_round(&mut state, 2, 6, 10, 14);
        quarter_round(&mut state, 3, 7, 11, 15);
        quarter_round(&mut state, 0, 5, 10, 15);
        quarter_round(&mut state, 1, 6, 11, 12);
        quarter_round(&mut state, 2, 7, 8, 13);
        quarter_round(&mut state, 3, 4, 9, 14);
    }
    for (out, word) in state.iter_mut().zip(input) {
        *out = out.wrapping_add(word);
    }
    state
}

/// A kept unit's word is below this: `(1 - p) * 2^32`, as [`super::dropout_mask`] compares.
pub fn keep_threshold(p: f64) -> u64 {
    ((1.0 - p) * 4_294_967_296.0) as u64
}

/// The `n` dropout factors starting at word `start` of the stream `key`, block by block:
/// `scale` where the word is below `threshold`, else 0.
pub fn mask_at(key: &StreamKey, start: u64, n: usize, threshold: u64, scale: f32) -> Vec<f32> {
    let mut mask = Vec::with_capacity(n);
    let mut block = start / 16;
    let mut skip = (start % 16) as usize;
    while mask.len() < n {
        let words = chacha8_block(key, block);
        let take = (16 - skip).min(n - mask.len());
        mask.extend(
            words[skip..skip + take]
                .iter()
                .map(|&w| if u64::from(w) < threshold { scale } else { 0.0 }),
        );
        (block, skip) = (block + 1, 0);
    }
    mask
}

#[cfg(test)]
mod tests {
    use rand::RngCore;

    use super::*;
    use crate::nn::{dropout_mask, dropout_scale};

    #[test]
    fn blocks_are_the_streams_words() {
        for (seed, purpose, index) in [(0, "dropout", 0), (7, "dropout/source-rows", 3)] {
            let mut stream = rng::stream(seed, purpose, index);
            let key = StreamKey::of(&stream);
            for block in [0u64, 1, 2, 5, 1 << 20, (1 << 32) + 3] {
                stream.set_word_pos(u128::from(block) * 16);
                let words: Vec<u32> = (0..16).map(|_| stream.next_u32()).collect();
                assert_eq!(chacha8_block(&key, block).to_vec(), words, "block {block}");
            }
        }
    }

    #[test]
    fn chacha8_matches_the_published_test_vector() {
        // The all-zero key and nonce: the ChaCha8 keystream's first bytes as published
        // (draft-strombergson-chacha-test-vectors, TC1, 8 rounds).
        let block = chacha8_block(
            &StreamKey {
                key: [0; 8],
                nonce: 0,
            },
            0,
        );
        let bytes: Vec<u8> = block.iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(
            &bytes[..16],
            &[
                0x3e, 0x00, 0xef, 0x2f, 0x89, 0x5f, 0x40, 0xd6, 0x7f, 0x5b, 0xb8, 0xe8, 0x1f, 0x09,
                0xa5, 0xa1
            ]
        );
    }

    #[test]
    fn masks_at_any_position_are_the_cpu_draws() {
        for p in [0.1, 0.5, 0.9] {
            let mut stream = rng::stream(3, "dropout", 2);
            let key = StreamKey::of(&stream);
            // Unaligned starts and lengths, across the parallel chunks of `dropout_mask`.
            for n in [1, 15, 17, 1000, 70_001] {
                let start = stream.get_word_pos() as u64;
                let cpu = dropout_mask(n, p, &mut stream);
                let counter = mask_at(&key, start, n, keep_threshold(p), dropout_scale(p));
                assert_eq!(cpu, counter, "p {p}, {n} words from {start}");
            }
        }
    }
}
