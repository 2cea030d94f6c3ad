//! Helpers shared by the codec's integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use bgp::codec::{Message, SessionContext, decode_message};
use bytes::BytesMut;

/// Bytes from hex text; whitespace and `|` (field separators in tests) are ignored.
pub fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'|')
        .collect();
    assert!(
        digits.len().is_multiple_of(2),
        "odd number of hex digits in {text:?}"
    );
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A whole message: marker, length and type in front of `body`.
pub fn message(message_type: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0xff; 16];
    out.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    out.push(message_type);
    out.extend_from_slice(body);
    out
}

pub fn encode(message: &Message, ctx: &SessionContext) -> Vec<u8> {
    let mut out = BytesMut::new();
    message.encode(ctx, &mut out).expect("encodes");
    out.to_vec()
}

/// Decodes exactly one whole message.
pub fn decode(bytes: &[u8], ctx: &SessionContext) -> Message {
    let (message, len) = decode_message(bytes, ctx)
        .unwrap_or_else(|e| panic!("{e}: {}", to_hex(bytes)))
        .expect("a whole message");
    assert_eq!(len, bytes.len(), "decoded length");
    message
}

/// Panics unless `actual == expected`, with both in hex and the first byte that
/// differs marked.
pub fn assert_bytes(actual: &[u8], expected: &[u8], what: &dyn std::fmt::Display) {
    if actual == expected {
        return;
    }
    let at = actual
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(actual.len().min(expected.len()));
    panic!(
        "{what}: bytes differ at offset {at} (lengths {} and {})\n  expected {}\n  actual   {}\n           {}^",
        expected.len(),
        actual.len(),
        to_hex(expected),
        to_hex(actual),
        "  ".repeat(at),
    );
}

/// Asserts that `bytes` decode to `value` and `value` encodes to `bytes`.
pub fn both_ways(bytes: &[u8], value: &Message, ctx: &SessionContext) {
    assert_eq!(&decode(bytes, ctx), value, "decode of {}", to_hex(bytes));
    assert_bytes(
        &encode(value, ctx),
        bytes,
        &format_args!("encode of {value:?}"),
    );
}

/// An UPDATE message from hex fields, lengths filled in.
pub fn update(withdrawn: &str, attributes: &str, nlri: &str) -> Vec<u8> {
    let (w, a, n) = (hex(withdrawn), hex(attributes), hex(nlri));
    let mut body = Vec::new();
    body.extend_from_slice(&(w.len() as u16).to_be_bytes());
    body.extend_from_slice(&w);
    body.extend_from_slice(&(a.len() as u16).to_be_bytes());
    body.extend_from_slice(&a);
    body.extend_from_slice(&n);
    message(2, &body)
}

/// ORIGIN IGP, AS_PATH [65001] (2-octet), NEXT_HOP 192.0.2.1.
pub const BASE_ATTRIBUTES_2: &str = "40 01 01 00 | 40 02 04 02 01 fde9 | 40 03 04 c0000201";
/// The same with a 4-octet AS_PATH.
pub const BASE_ATTRIBUTES_4: &str = "40 01 01 00 | 40 02 06 02 01 0000fde9 | 40 03 04 c0000201";
