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

/// Elements per block: each block moves `B` bytes of every plane at once, through fixed-size
/// arrays, so the transpose has constant bounds and no checks, and the compiler unrolls and
/// vectorizes it. Strided byte-at-a-time copies were a fifth of a compressed get.
const B: usize = 64;

#[expect(
    clippy::indexing_slicing,
    reason = "j < N and i < n bound every index by construction"
)]
fn shuffle_n<const N: usize>(src: &[u8], dst: &mut [u8]) {
    let n = src.len() / N;
    let (body, tail) = dst.split_at_mut(n * N);
    let elems = src.chunks_exact(N);
    tail.copy_from_slice(elems.remainder());
    let blocks = n / B;
    for blk in 0..blocks {
        let Some(chunk) = src.get(blk * B * N..(blk + 1) * B * N) else {
            break;
        };
        let mut cols = [[0u8; B]; N];
        for (i, e) in chunk.chunks_exact(N).enumerate() {
            for j in 0..N {
                cols[j][i] = e[j];
            }
        }
        for (j, col) in cols.iter().enumerate() {
            body[j * n + blk * B..j * n + blk * B + B].copy_from_slice(col);
        }
    }
    for i in blocks * B..n {
        for j in 0..N {
            body[j * n + i] = src[i * N + j];
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
    let (out, out_tail) = dst.split_at_mut(n * N);
    out_tail.copy_from_slice(tail);
    let blocks = n / B;
    for blk in 0..blocks {
        let mut cols = [[0u8; B]; N];
        for (j, col) in cols.iter_mut().enumerate() {
            col.copy_from_slice(&body[j * n + blk * B..j * n + blk * B + B]);
        }
        let Some(chunk) = out.get_mut(blk * B * N..(blk + 1) * B * N) else {
            break;
        };
        for (i, e) in chunk.chunks_exact_mut(N).enumerate() {
            for j in 0..N {
                e[j] = cols[j][i];
            }
        }
    }
    for i in blocks * B..n {
        for j in 0..N {
            out[i * N + j] = body[j * n + i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_round_trips_with_a_tail() {
        for (size, len) in [1, 2, 4, 8, 16]
            .into_iter()
            .flat_map(|s| [(s, 103), (s, 64 * s * 3 + 7 * s + 5)])
        {
            let src: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
            let mut s = vec![0; src.len()];
            let mut back = vec![0; src.len()];
            shuffle(&src, &mut s, size);
            unshuffle(&s, &mut back, size);
            assert_eq!(back, src, "size {size}");
            // Against the definition: byte j of element i goes to plane j.
            let n = len / size;
            for i in 0..n {
                for j in 0..size.max(1) {
                    if size > 1 {
                        assert_eq!(
                            s[j * n + i],
                            src[i * size + j],
                            "size {size} elem {i} byte {j}"
                        );
                    }
                }
            }
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
