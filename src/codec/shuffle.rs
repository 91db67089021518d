//! Byte shuffle (the Blosc trick): byte `j` of every element goes to plane `j`, so the
//! slowly-varying sign/exponent bytes of floats sit together and compress far better.
//! Bytes past the last whole element stay at the end, unshuffled.

/// Shuffle `src` into `dst` (same length) for elements of `size` bytes.
pub fn shuffle(src: &[u8], dst: &mut [u8], size: usize) {
    match size {
        2 => shuffle_n::<2>(src, dst),
        4 => shuffle_n::<4>(src, dst),
        8 => shuffle_n::<8>(src, dst),
        16 => shuffle_n::<16>(src, dst),
        _ => dst.copy_from_slice(src),
    }
}

/// Inverse of `shuffle`.
pub fn unshuffle(src: &[u8], dst: &mut [u8], size: usize) {
    match size {
        2 => unshuffle_n::<2>(src, dst),
        4 => unshuffle_n::<4>(src, dst),
        8 => unshuffle_n::<8>(src, dst),
        16 => unshuffle_n::<16>(src, dst),
        _ => dst.copy_from_slice(src),
    }
}

#[expect(
    clippy::indexing_slicing,
    reason = "j < N and i < n bound every index by construction"
)]
fn shuffle_n<const N: usize>(src: &[u8], dst: &mut [u8]) {
    let n = src.len() / N;
    let (body, tail) = dst.split_at_mut(n * N);
    let elems = src.chunks_exact(N);
    tail.copy_from_slice(elems.remainder());
    for (i, e) in elems.enumerate() {
        for j in 0..N {
            body[j * n + i] = e[j];
        }
    }
}

#[expect(
    clippy::indexing_slicing,
    reason = "j < N and i < n bound every index by construction"
)]
fn unshuffle_n<const N: usize>(src: &[u8], dst: &mut [u8]) {
    let n = src.len() / N;
    let (body, tail) = src.split_at(n * N);
    let mut out = dst.chunks_exact_mut(N);
    for (i, e) in (&mut out).enumerate() {
        for j in 0..N {
            e[j] = body[j * n + i];
        }
    }
    out.into_remainder().copy_from_slice(tail);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_round_trips_with_a_tail() {
        for size in [1, 2, 4, 8, 16] {
            let src: Vec<u8> = (0..103u8).collect();
            let mut s = vec![0; src.len()];
            let mut back = vec![0; src.len()];
            shuffle(&src, &mut s, size);
            unshuffle(&s, &mut back, size);
            assert_eq!(back, src, "size {size}");
        }
    }

    #[test]
    fn shuffle_groups_bytes_by_position() {
        let src = [1, 2, 3, 4, 5, 6, 7, 8];
        let mut s = [0; 8];
        shuffle(&src, &mut s, 4);
        assert_eq!(s, [1, 5, 2, 6, 3, 7, 4, 8]);
    }
}
