//! nom primitives over byte slices, with the one error type the decoders map from.

use std::net::Ipv4Addr;

use nom::Parser;
use nom::bytes::complete::take;
use nom::number::complete::{be_u8, be_u16, be_u32};

pub(crate) type Res<'a, T> = nom::IResult<&'a [u8], T, nom::error::Error<&'a [u8]>>;

pub(crate) fn u8(input: &[u8]) -> Res<'_, u8> {
    be_u8(input)
}

pub(crate) fn u16(input: &[u8]) -> Res<'_, u16> {
    be_u16(input)
}

pub(crate) fn u32(input: &[u8]) -> Res<'_, u32> {
    be_u32(input)
}

pub(crate) fn bytes(n: usize) -> impl Fn(&[u8]) -> Res<'_, &[u8]> {
    move |input| take(n).parse(input)
}

pub(crate) fn ipv4(input: &[u8]) -> Res<'_, Ipv4Addr> {
    be_u32.map(Ipv4Addr::from).parse(input)
}

/// How far `rest` lies into `start` (both views of one buffer).
pub(crate) fn offset(start: &[u8], rest: &[u8]) -> usize {
    start.len() - rest.len()
}
