//! The layout of [`localrec_dense_tiles`] as data in the wasm module, for
//! `scripts/dense-kernel.mjs`: the script writes the function a hand-scheduled body after
//! linking, and that body must agree with the Rust function on its tile shape, its sign
//! bits and the order of its parameters. The script reads this layout from the built
//! module and refuses to splice when it is not the one it was written for, instead of
//! copying the constants by hand.
//!
//! On wasm32 it is a custom section named `localrec.dense_layout`, one line of ASCII:
//!
//! ```text
//! localrec_dense_tiles rows=6 vecs=2 panel=8 subtract_first=1 subtract_second=2 params=a,a_stride,w,len,tiles,out,stride,bias,out2,bias2,signs
//! ```
//!
//! It is data only: no export, nothing in the JS API, and the script drops the section
//! from the modules it writes.

#[cfg(doc)]
use super::localrec_dense_tiles;
use super::{PANEL, SUBTRACT_FIRST, SUBTRACT_SECOND, TILE_KERNEL_PARAMS, TILE_ROWS, VECS};

const CAPACITY: usize = 256;

const fn push(buf: &mut [u8; CAPACITY], at: usize, bytes: &[u8]) -> usize {
    let mut i = 0;
    while i < bytes.len() {
        buf[at + i] = bytes[i];
        i += 1;
    }
    at + bytes.len()
}

const fn push_field(buf: &mut [u8; CAPACITY], at: usize, name: &str, value: usize) -> usize {
    let mut at = push(buf, at, b" ");
    at = push(buf, at, name.as_bytes());
    at = push(buf, at, b"=");
    let mut digits = [0u8; 20];
    let mut len = 0;
    let mut n = value;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    while len > 0 {
        len -= 1;
        buf[at] = digits[len];
        at += 1;
    }
    at
}

/// The line and its length, built at compile time from the constants themselves (a
/// layout too long for `CAPACITY` fails to compile).
const TEXT: ([u8; CAPACITY], usize) = {
    let mut buf = [0u8; CAPACITY];
    let mut at = push(&mut buf, 0, b"localrec_dense_tiles");
    at = push_field(&mut buf, at, "rows", TILE_ROWS);
    at = push_field(&mut buf, at, "vecs", VECS);
    at = push_field(&mut buf, at, "panel", PANEL);
    at = push_field(&mut buf, at, "subtract_first", SUBTRACT_FIRST as usize);
    at = push_field(&mut buf, at, "subtract_second", SUBTRACT_SECOND as usize);
    at = push(&mut buf, at, b" params=");
    let mut i = 0;
    while i < TILE_KERNEL_PARAMS.len() {
        if i > 0 {
            at = push(&mut buf, at, b",");
        }
        at = push(&mut buf, at, TILE_KERNEL_PARAMS[i].as_bytes());
        i += 1;
    }
    (buf, at)
};

/// The layout line, exactly [`TEXT`]'s bytes.
const LAYOUT: [u8; TEXT.1] = {
    let mut out = [0u8; TEXT.1];
    let mut i = 0;
    while i < TEXT.1 {
        out[i] = TEXT.0[i];
        i += 1;
    }
    out
};

// Kept on every target (`#[used]`), a custom section on wasm32 only.
#[used]
#[cfg_attr(target_arch = "wasm32", unsafe(link_section = "localrec.dense_layout"))]
static DENSE_LAYOUT: [u8; TEXT.1] = LAYOUT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_line_states_every_constant_the_kernel_is_built_on() {
        let text = std::str::from_utf8(&LAYOUT).unwrap();
        let mut words = text.split(' ');
        assert_eq!(words.next(), Some("localrec_dense_tiles"));
        let fields: std::collections::HashMap<&str, &str> = words.map(|w| w.split_once('=').unwrap()).collect();
        assert_eq!(fields["rows"], TILE_ROWS.to_string());
        assert_eq!(fields["vecs"], VECS.to_string());
        assert_eq!(fields["panel"], PANEL.to_string());
        assert_eq!(fields["subtract_first"], SUBTRACT_FIRST.to_string());
        assert_eq!(fields["subtract_second"], SUBTRACT_SECOND.to_string());
        assert_eq!(fields["params"].split(',').collect::<Vec<_>>(), TILE_KERNEL_PARAMS);
        assert_eq!(fields.len(), 6);
    }
}
