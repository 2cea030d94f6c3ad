//! The selector parser: recursive descent over nom's primitives. Every failure is
//! reported at the column where the parser stopped, with what it expected there.

use std::collections::BTreeSet;

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{char, multispace0};
use nom::error::{ErrorKind, ParseError};
use nom::sequence::delimited;
use nom::{IResult, Parser};

use super::{Expr, MAX_DEPTH, MAX_LENGTH};

/// What the limits say when they are exceeded (the numbers are the constants').
const TOO_DEEP: &str = "at most 32 levels of nesting (! and parentheses)";
const TOO_LONG: &str = "at most 4096 characters";
const _: () = assert!(MAX_DEPTH == 32 && MAX_LENGTH == 4096, "update the messages");

/// Why a selector did not parse; `column` counts characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("selector {input:?}: at column {column}: expected {expected}")]
pub struct SelectorError {
    pub input: String,
    pub column: usize,
    pub expected: &'static str,
}

/// A failure inside the parser: where, and what would have been accepted there.
#[derive(Debug)]
struct Fail<'a> {
    at: &'a str,
    expected: &'static str,
}

impl<'a> ParseError<&'a str> for Fail<'a> {
    fn from_error_kind(at: &'a str, _: ErrorKind) -> Self {
        Fail {
            at,
            expected: "more input",
        }
    }

    fn append(_: &'a str, _: ErrorKind, other: Self) -> Self {
        other
    }

    /// Of two alternatives, report the one that got further.
    fn or(self, other: Self) -> Self {
        if other.at.len() <= self.at.len() {
            other
        } else {
            self
        }
    }
}

type Res<'a, T> = IResult<&'a str, T, Fail<'a>>;

pub(super) fn selector(input: &str) -> Result<Expr, SelectorError> {
    let error = |fail: Fail<'_>| SelectorError {
        input: input.to_owned(),
        column: input[..input.len() - fail.at.len()].chars().count() + 1,
        expected: fail.expected,
    };
    if let Some((at, _)) = input.char_indices().nth(MAX_LENGTH) {
        return Err(error(Fail {
            at: &input[at..],
            expected: TOO_LONG,
        }));
    }
    match or_expr(input, 0) {
        Ok((rest, expr)) => {
            let rest = skip_space(rest);
            if rest.is_empty() {
                Ok(expr)
            } else {
                Err(error(Fail {
                    at: rest,
                    expected: "&&, || or the end of the selector",
                }))
            }
        }
        Err(nom::Err::Error(fail) | nom::Err::Failure(fail)) => Err(error(fail)),
        Err(nom::Err::Incomplete(_)) => Err(error(Fail {
            at: "",
            expected: "more input",
        })),
    }
}

fn skip_space(input: &str) -> &str {
    let spaced: Res<'_, &str> = multispace0(input);
    spaced.map_or(input, |(rest, _)| rest)
}

/// After optional space, `text`; otherwise fails where it was expected.
fn token<'a>(text: &'static str, expected: &'static str) -> impl Fn(&'a str) -> Res<'a, &'a str> {
    move |input| {
        let input = skip_space(input);
        tag::<_, _, Fail<'a>>(text).parse(input).map_err(|_| {
            nom::Err::Error(Fail {
                at: input,
                expected,
            })
        })
    }
}

/// Left-associative chain of `operand (op operand)*`, at nesting `depth`.
fn chain<'a>(
    input: &'a str,
    depth: usize,
    op: &'static str,
    operand: fn(&'a str, usize) -> Res<'a, Expr>,
    join: fn(Box<Expr>, Box<Expr>) -> Expr,
) -> Res<'a, Expr> {
    let (mut input, mut left) = operand(input, depth)?;
    while let Ok((rest, _)) = token(op, op)(input) {
        let (rest, right) = operand(rest, depth)?;
        left = join(Box::new(left), Box::new(right));
        input = rest;
    }
    Ok((input, left))
}

fn or_expr(input: &str, depth: usize) -> Res<'_, Expr> {
    chain(input, depth, "||", and_expr, Expr::Or)
}

fn and_expr(input: &str, depth: usize) -> Res<'_, Expr> {
    chain(input, depth, "&&", unary, Expr::And)
}

/// One level deeper than `depth`, or a failure at `at` past [`MAX_DEPTH`].
fn deeper(at: &str, depth: usize) -> Result<usize, nom::Err<Fail<'_>>> {
    if depth >= MAX_DEPTH {
        return Err(nom::Err::Failure(Fail {
            at,
            expected: TOO_DEEP,
        }));
    }
    Ok(depth + 1)
}

fn unary(input: &str, depth: usize) -> Res<'_, Expr> {
    let input = skip_space(input);
    if let Some(rest) = input.strip_prefix('!') {
        let (rest, inner) = unary(rest, deeper(input, depth)?)?;
        return Ok((rest, Expr::Not(Box::new(inner))));
    }
    term(input, depth)
}

fn term(input: &str, depth: usize) -> Res<'_, Expr> {
    let input = skip_space(input);
    if let Some(rest) = input.strip_prefix('(') {
        let (rest, inner) = or_expr(rest, deeper(input, depth)?)?;
        let (rest, _) = token(")", "a closing )")(rest)?;
        return Ok((rest, inner));
    }
    if let Ok((rest, _)) = call("all")(input) {
        let (rest, _) = token(")", "a closing ) after all(")(rest)?;
        return Ok((rest, Expr::All));
    }
    if let Ok((rest, _)) = call("has")(input) {
        let (rest, key) = label_key(rest)?;
        let (rest, _) = token(")", "a closing ) after the key in has(")(rest)?;
        return Ok((rest, Expr::Has(key.to_owned())));
    }
    let (rest, key) = label_key(input)?;
    comparison(rest, key.to_owned())
}

/// `name(`, with optional space before the parenthesis.
fn call<'a>(name: &'static str) -> impl Fn(&'a str) -> Res<'a, ()> {
    move |input| {
        let (rest, _) = tag(name).parse(input)?;
        let (rest, _) = token("(", "(")(rest)?;
        Ok((rest, ()))
    }
}

fn comparison(input: &str, key: String) -> Res<'_, Expr> {
    let operator = skip_space(input);
    if let Ok((rest, _)) = token("==", "==")(operator) {
        let (rest, v) = value(rest)?;
        return Ok((rest, Expr::Equal(key, v.to_owned())));
    }
    if let Ok((rest, _)) = token("!=", "!=")(operator) {
        let (rest, v) = value(rest)?;
        return Ok((rest, Expr::NotEqual(key, v.to_owned())));
    }
    if let Ok((rest, _)) = keyword("in")(operator) {
        let (rest, set) = value_set(rest)?;
        return Ok((rest, Expr::In(key, set)));
    }
    if let Ok((rest, _)) = keyword("not")(operator) {
        let (rest, _) =
            keyword("in")(skip_space(rest)).map_err(|_| fail(skip_space(rest), "in after not"))?;
        let (rest, set) = value_set(rest)?;
        return Ok((rest, Expr::NotIn(key, set)));
    }
    Err(fail(operator, "==, !=, in or not in after the label key"))
}

/// A word followed by something that cannot continue it (so `in` is not `inside`).
fn keyword<'a>(word: &'static str) -> impl Fn(&'a str) -> Res<'a, ()> {
    move |input| {
        let (rest, _) = tag(word).parse(input)?;
        if rest.starts_with(is_key_char) {
            return Err(fail(input, word));
        }
        Ok((rest, ()))
    }
}

fn fail<'a>(at: &'a str, expected: &'static str) -> nom::Err<Fail<'a>> {
    nom::Err::Error(Fail { at, expected })
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')
}

/// A Kubernetes-style label key: `[prefix/]name`.
fn label_key(input: &str) -> Res<'_, &str> {
    let input = skip_space(input);
    take_while1::<_, _, Fail<'_>>(is_key_char)
        .parse(input)
        .map_err(|_| fail(input, "a label key"))
}

/// A value quoted with `"` or `'`.
fn value(input: &str) -> Res<'_, &str> {
    let input = skip_space(input);
    let quoted = |q: char| delimited(char::<_, Fail<'_>>(q), take_while(move |c| c != q), char(q));
    alt((quoted('"'), quoted('\'')))
        .parse(input)
        .map_err(|_| fail(input, "a quoted value"))
}

/// `{ "a", "b" }`, possibly empty.
fn value_set(input: &str) -> Res<'_, BTreeSet<String>> {
    let (mut input, _) = token("{", "{ to open the set of values")(input)?;
    let mut set = BTreeSet::new();
    if let Ok((rest, _)) = token("}", "}")(input) {
        return Ok((rest, set));
    }
    loop {
        let (rest, v) = value(input)?;
        set.insert(v.to_owned());
        if let Ok((rest, _)) = token(",", ",")(rest) {
            input = rest;
            continue;
        }
        let (rest, _) = token("}", ", or } in the set of values")(rest)?;
        return Ok((rest, set));
    }
}
