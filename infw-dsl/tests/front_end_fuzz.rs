//! A bounded property test of the macro front end: random and token-mutated declarations
//! never make parse / lower / codegen panic, and every rejection points at a span inside
//! the input (never the call site, unless the input has no token to point at).
//!
//! Seeded (the same cases every run) and bounded: a few thousand cases, well under a
//! second in release. A failure prints the offending declaration.

use infw_dsl::{compile, expand};
use proc_macro2::{Delimiter, TokenStream, TokenTree};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::str::FromStr;

/// Valid declarations to mutate, covering every kind of item and argument.
const SEEDS: &[&str] = &[
    "dense(512) relu dense(512) relu",
    "dense(512, w_std = 1.4142135623730951, b_std = 0.1) relu readout(w_std = 1.5, b_std = 0.1)",
    "dense(256, w_std = 1.5) erf dense(3, b_std = 0.05)",
    "dense(128) leaky_relu(0.1) dense(64) abs dense(32) identity",
    "dense(64) residual(relu dense(64)) layer_norm",
    "dense(32) parallel(dense(16) relu | dense(8) erf) dense(4)",
    "dense(width = sigma_w) act(my::Swish) dense(8, w_std = 2f64.sqrt())",
    "input(8, 8, 1) conv(4, size = 3, padding = same) relu global_avg_pool dense(10)",
    "input(16, 2) conv(8, size = 3, stride = 2) erf flatten dense(3)",
    "dense(8) gelu dense(8) sin readout",
];

/// Tokens a mutation may insert or substitute: names, keys, extreme and suffixed numbers,
/// punctuation and delimiters.
const VOCABULARY: &[&str] = &[
    "dense",
    "relu",
    "erf",
    "gelu",
    "leaky_relu",
    "readout",
    "residual",
    "parallel",
    "act",
    "layer_norm",
    "input",
    "conv",
    "global_avg_pool",
    "flatten",
    "batch_norm",
    "w_std",
    "b_std",
    "width",
    "size",
    "stride",
    "same",
    "valid",
    "padding",
    "x",
    "self",
    "0",
    "1",
    "-1",
    "0.0",
    "1e200",
    "1e160",
    "1e150",
    "1e-320",
    "-1e308",
    "1.7976931348623157e308",
    "4294967296",
    "4294967297",
    "18446744073709551615",
    "300u8",
    "1.5f16",
    "2f32",
    "1e400",
    "'a'",
    "\"s\"",
    "true",
    "|",
    ",",
    ";",
    "=",
    "==",
    "+",
    "-",
    "*",
    "::",
    ".",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "()",
    "(|)",
    "(,)",
    "(=)",
    "((1))",
];

/// A declaration as a flat list of token texts (groups as their delimiters).
fn flatten(ts: TokenStream, out: &mut Vec<String>) {
    for tt in ts {
        match tt {
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::None => ("", ""),
                };
                out.push(open.into());
                flatten(g.stream(), out);
                out.push(close.into());
            }
            other => out.push(other.to_string()),
        }
    }
}

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from[rng.random_range(0..from.len())]
}

/// One to three token-level mutations of a valid declaration.
fn mutate(rng: &mut StdRng, seed: &str) -> String {
    let mut toks = Vec::new();
    flatten(TokenStream::from_str(seed).expect("seeds lex"), &mut toks);
    for _ in 0..rng.random_range(1..=3) {
        let i = rng.random_range(0..toks.len().max(1));
        match rng.random_range(0..5) {
            0 if !toks.is_empty() => {
                toks.remove(i);
            }
            1 if !toks.is_empty() => toks[i] = pick(rng, VOCABULARY).into(),
            2 => toks.insert(i.min(toks.len()), pick(rng, VOCABULARY).into()),
            3 if i + 1 < toks.len() => toks.swap(i, i + 1),
            _ if !toks.is_empty() => {
                let t = toks[i].clone();
                toks.insert(i, t);
            }
            _ => toks.push(pick(rng, VOCABULARY).into()),
        }
    }
    toks.join(" ")
}

/// A random sequence of vocabulary tokens (unbalanced ones are skipped by the lexer).
fn random(rng: &mut StdRng) -> String {
    (0..rng.random_range(0..12))
        .map(|_| pick(rng, VOCABULARY))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The byte range the input's tokens cover.
fn extent(ts: &TokenStream) -> Option<Range<usize>> {
    let spans: Vec<Range<usize>> = ts
        .clone()
        .into_iter()
        .map(|t| t.span().byte_range())
        .collect();
    Some(spans.first()?.start..spans.last()?.end)
}

/// What one declaration did.
enum Verdict {
    Skipped,
    Accepted,
    Rejected,
    Broken(String),
}

/// Runs one declaration through the front end; returns a description of a violation.
fn check(src: &str) -> Verdict {
    match run(src) {
        Ok(v) => v,
        Err(why) => Verdict::Broken(why),
    }
}

fn run(src: &str) -> Result<Verdict, String> {
    let Ok(ts) = TokenStream::from_str(src) else {
        return Ok(Verdict::Skipped); // does not lex (unbalanced): rustc would not call the macro
    };
    let whole = extent(&ts);
    catch_unwind(AssertUnwindSafe(|| expand(ts.clone()))).map_err(|_| "expand panicked")?;
    let result =
        catch_unwind(AssertUnwindSafe(|| compile(ts.clone()))).map_err(|_| "compile panicked")?;
    let (err, whole) = match (result, whole) {
        (Ok(_), _) => return Ok(Verdict::Accepted),
        (Err(_), None) => return Ok(Verdict::Rejected), // empty input: nothing to point at
        (Err(e), Some(w)) => (e, w),
    };
    for e in err {
        let r = e.span().byte_range();
        if r.start < whole.start || r.end > whole.end || r == (0..0) {
            return Err(format!(
                "error `{e}` at bytes {r:?}, outside the input's {whole:?}"
            ));
        }
    }
    Ok(Verdict::Rejected)
}

#[test]
fn random_and_mutated_declarations_never_panic_and_errors_carry_spans() {
    // The seeds themselves compile, so mutations start from valid declarations.
    for s in SEEDS {
        let r = compile(TokenStream::from_str(s).unwrap());
        assert!(r.is_ok(), "{s}: {:?}", r.err().map(|e| e.to_string()));
    }
    let mut rng = StdRng::seed_from_u64(0x1f_2e_3d);
    // The span test can tell: the call site has no position, parsed tokens do.
    assert_eq!(proc_macro2::Span::call_site().byte_range(), 0..0);
    assert!(extent(&TokenStream::from_str("dense(4)").unwrap()).is_some_and(|r| r.end > 0));
    let mut failures = Vec::new();
    let (mut checked, mut accepted, mut rejected) = (0, 0, 0);
    // Panics are caught and reported below; keep their messages out of the test output.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for case in 0..4000 {
        let src = if case % 4 == 3 {
            random(&mut rng)
        } else {
            mutate(&mut rng, SEEDS[case % SEEDS.len()])
        };
        match check(&src) {
            Verdict::Skipped => {}
            Verdict::Accepted => accepted += 1,
            Verdict::Rejected => rejected += 1,
            Verdict::Broken(why) => failures.push(format!("{why}: `{src}`")),
        }
        checked += 1;
    }
    std::panic::set_hook(hook);
    // The cases reach both sides of the front end, not just the lexer.
    assert!(
        accepted > 40 && rejected > 1000,
        "{accepted} accepted, {rejected} rejected"
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} declarations broke the front end, e.g.:\n{}",
        failures.len(),
        failures[..failures.len().min(15)].join("\n")
    );
}
