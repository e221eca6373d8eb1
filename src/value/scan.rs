//! Finding the bytes a JSON string cannot hold as they are (`"`, `\\`,
//! control characters): the one scan behind writing JSON strings
//! ([`super::write_json_str`]) and reading them ([`crate::io::json`]).

/// The position of the first `"`, `\\` or control character at or after
/// `pos` (`pos` itself when it is at or past the end, else `bytes.len()`
/// when there is none): sixteen bytes at a time with SSE2, which every
/// x86-64 processor has.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
pub(crate) fn next_special(bytes: &[u8], mut pos: usize) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // One bit per byte of `chunk`, set on the special ones. `max(x, 0x1f)
    // == 0x1f` is an unsigned `x < 0x20`: bytes from 0x80 up (parts of
    // multi-byte characters) are not taken for controls, as a signed
    // compare would take them.
    let specials = |chunk: &[u8; 16]| -> u32 {
        // SAFETY: the load reads exactly the sixteen bytes of `chunk`, and
        // the intrinsics need nothing but SSE2, which this code is compiled
        // only with (see its `cfg`).
        unsafe {
            let x = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
            let quote = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
            let low = _mm_set1_epi8(0x1f);
            let control = _mm_cmpeq_epi8(_mm_max_epu8(x, low), low);
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
        }
    };
    while let Some(chunk) = bytes.get(pos..).and_then(<[u8]>::first_chunk::<16>) {
        let found = specials(chunk);
        if found != 0 {
            return pos + found.trailing_zeros() as usize;
        }
        pos += 16;
    }
    let len = bytes.len();
    if pos >= len {
        return pos;
    }
    // Fewer than sixteen bytes left: the text's last sixteen, the bytes
    // before `pos` shifted out; a text shorter than that goes eight bytes
    // at a time.
    let Some(last) = bytes.last_chunk::<16>() else {
        return next_special_swar(bytes, pos);
    };
    let found = specials(last) >> (pos - (len - 16));
    if found != 0 {
        pos + found.trailing_zeros() as usize
    } else {
        len
    }
}

/// [`next_special`] on other targets, eight bytes at a time.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
pub(crate) fn next_special(bytes: &[u8], pos: usize) -> usize {
    next_special_swar(bytes, pos)
}

/// [`next_special`] eight bytes at a time in a `u64`: the other targets'
/// scan, and short texts' on x86-64.
#[inline(always)]
pub(crate) fn next_special_swar(bytes: &[u8], mut pos: usize) -> usize {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    while let Some(chunk) = bytes.get(pos..pos + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let control = x.wrapping_sub(ONES * 0x20) & !x;
        let q = x ^ (ONES * u64::from(b'"'));
        let quote = q.wrapping_sub(ONES) & !q;
        let b = x ^ (ONES * u64::from(b'\\'));
        let backslash = b.wrapping_sub(ONES) & !b;
        let found = (control | quote | backslash) & HIGH;
        if found != 0 {
            // The lowest flagged byte is a true match: borrows only
            // propagate upward from a byte that matched.
            return pos + (found.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while let Some(&byte) = bytes.get(pos) {
        if byte == b'"' || byte == b'\\' || byte < 0x20 {
            return pos;
        }
        pos += 1;
    }
    pos
}
