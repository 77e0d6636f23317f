//! Stage 1, syntax: tokens → a tree of layer calls and blocks, each keeping its spans.
//!
//! Only the shape is checked here (`name`, `name(args)`, `residual(layers…)`,
//! `parallel(layers… | layers…)`; arguments `value` or `key = value`); names and values
//! are judged by the `ir` stage.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{parenthesized, Expr, Ident, Token};

/// How deeply blocks may nest: far beyond any real architecture, and well below what
/// would overflow the compiler's stack.
pub const MAX_NESTING: usize = 32;

/// How deeply delimiters (`(…)`, `[…]`, `{…}`) may nest anywhere in a declaration, blocks
/// and arguments together: far beyond any real declaration (blocks alone stop at
/// [`MAX_NESTING`]), and well below the depth at which syn's recursive expression parser
/// overflows the compiler's stack (about 3 000 nested parentheses did).
pub const MAX_DELIMITER_DEPTH: usize = 128;

/// Rejects token trees nested deeper than [`MAX_DELIMITER_DEPTH`], at the opening delimiter
/// that goes too deep. Iterative, so the check itself cannot overflow the stack.
fn check_delimiter_depth(input: &TokenStream) -> syn::Result<()> {
    let mut stack = vec![input.clone().into_iter()];
    while let Some(top) = stack.last_mut() {
        match top.next() {
            Some(proc_macro2::TokenTree::Group(g)) => {
                if stack.len() > MAX_DELIMITER_DEPTH {
                    return Err(syn::Error::new(
                        g.span_open(),
                        format!(
                            "delimiters nest more than {MAX_DELIMITER_DEPTH} deep here; simplify this expression"
                        ),
                    ));
                }
                stack.push(g.stream().into_iter());
            }
            Some(_) => {}
            None => {
                stack.pop();
            }
        }
    }
    Ok(())
}

/// The block combinators: their bodies are layers, not arguments.
pub const BLOCKS: &[&str] = &["residual", "parallel"];

/// One item of a layer sequence.
#[derive(Debug, Clone)]
pub enum Item {
    /// `relu`, `leaky_relu(0.1)`, `dense(512, w_std = 1.4)`, `act(my::Swish)`.
    Layer(LayerCall),
    /// `residual(…)` or `parallel(… | …)`.
    Block(Block),
}

/// One layer as written.
#[derive(Debug, Clone)]
pub struct LayerCall {
    /// The layer or activation name (`dense`, `relu`, …).
    pub name: Ident,
    /// `None` when written without parentheses.
    pub args: Option<Args>,
}

/// A combinator with its branches: `residual` has one, `parallel` one per `|`-separated part.
#[derive(Debug, Clone)]
pub struct Block {
    /// `residual` or `parallel`.
    pub name: Ident,
    /// The span of the parentheses.
    pub span: Span,
    /// The items of each branch.
    pub branches: Vec<Vec<Item>>,
}

/// The parenthesised arguments of a layer call.
#[derive(Debug, Clone)]
pub struct Args {
    /// The span of the parentheses.
    pub span: Span,
    /// The arguments in order.
    pub list: Vec<Arg>,
}

/// One argument: positional (`512`) or named (`w_std = 1.4`).
#[derive(Debug, Clone)]
pub struct Arg {
    /// The name of a named argument, `None` for a positional one.
    pub key: Option<Ident>,
    /// The value as written.
    pub value: Expr,
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(Ident) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            Ok(Arg {
                key: Some(key),
                value: input.parse()?,
            })
        } else {
            Ok(Arg {
                key: None,
                value: input.parse()?,
            })
        }
    }
}

/// Parses a sequence of items up to the end of `input` or a `|` (left in the stream).
fn items(input: ParseStream, depth: usize) -> syn::Result<Vec<Item>> {
    let mut out = Vec::new();
    while !input.is_empty() && !input.peek(Token![|]) {
        out.push(item(input, depth)?);
    }
    Ok(out)
}

fn item(input: ParseStream, depth: usize) -> syn::Result<Item> {
    if input.peek(Token![,]) || input.peek(Token![;]) {
        let sep: proc_macro2::TokenTree = input.parse()?;
        return Err(syn::Error::new(
            sep.span(),
            "layers are separated by whitespace only; remove this separator",
        ));
    }
    let name: Ident = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected a layer name such as `dense(512)`, `relu`, `residual(…)`",
        )
    })?;
    let block = BLOCKS.contains(&name.to_string().as_str());
    if !input.peek(syn::token::Paren) {
        return Ok(Item::Layer(LayerCall { name, args: None }));
    }
    let content;
    let paren = parenthesized!(content in input);
    let span = paren.span.join();
    if block {
        if depth >= MAX_NESTING {
            return Err(syn::Error::new(
                name.span(),
                format!("blocks nest more than {MAX_NESTING} deep"),
            ));
        }
        let mut branches = vec![items(&content, depth + 1)?];
        while content.peek(Token![|]) {
            content.parse::<Token![|]>()?;
            branches.push(items(&content, depth + 1)?);
        }
        return Ok(Item::Block(Block {
            name,
            span,
            branches,
        }));
    }
    let list = Punctuated::<Arg, Token![,]>::parse_terminated(&content)?;
    Ok(Item::Layer(LayerCall {
        name,
        args: Some(Args {
            span,
            list: list.into_iter().collect(),
        }),
    }))
}

/// The whole body of `network!`: layers and blocks separated by whitespace.
pub fn parse(input: TokenStream) -> syn::Result<Vec<Item>> {
    check_delimiter_depth(&input)?;
    let parser = |stream: ParseStream| {
        let out = items(stream, 0)?;
        if stream.peek(Token![|]) {
            let bar: Token![|] = stream.parse()?;
            return Err(syn::Error::new(
                bar.span,
                "`|` separates the branches of `parallel(… | …)` only",
            ));
        }
        Ok(out)
    };
    parser.parse2(input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn layer(item: &Item) -> &LayerCall {
        match item {
            Item::Layer(l) => l,
            Item::Block(_) => panic!("expected a layer"),
        }
    }

    #[test]
    fn parses_names_positional_and_named_arguments() {
        let items = parse(quote!(dense(512, w_std = 1.5) relu leaky_relu(0.1))).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(layer(&items[0]).name, "dense");
        let args = layer(&items[0]).args.as_ref().unwrap();
        assert!(args.list[0].key.is_none());
        assert_eq!(args.list[1].key.as_ref().unwrap(), "w_std");
        assert!(layer(&items[1]).args.is_none());
    }

    #[test]
    fn parses_blocks_and_branches() {
        let items =
            parse(quote!(dense(8) residual(relu dense(8)) parallel(dense(4) | dense(2) relu)))
                .unwrap();
        assert_eq!(items.len(), 3);
        match (&items[1], &items[2]) {
            (Item::Block(r), Item::Block(p)) => {
                assert_eq!(r.branches.len(), 1);
                assert_eq!(r.branches[0].len(), 2);
                assert_eq!(p.branches.len(), 2);
                assert_eq!(p.branches[1].len(), 2);
            }
            _ => panic!("expected blocks"),
        }
    }

    #[test]
    fn rejects_comma_separators_and_stray_bars() {
        let err = parse(quote!(dense(4), relu)).unwrap_err();
        assert!(err.to_string().contains("whitespace"));
        let err = parse(quote!(dense(4) | relu)).unwrap_err();
        assert!(err.to_string().contains("parallel"));
    }

    #[test]
    fn rejects_absurd_nesting_without_overflowing() {
        let mut t = quote!(dense(4));
        for _ in 0..200 {
            t = quote!(residual(#t));
        }
        let err = parse(t).unwrap_err();
        assert!(err.to_string().contains("nest"));
    }

    /// ~3 000 nested parentheses once overflowed the stack inside syn's expression
    /// parser; they are now an error at the first parenthesis beyond the bound.
    #[test]
    fn rejects_deeply_nested_argument_parentheses_at_the_token() {
        let depth = 3000;
        let src = format!("dense({}5{})", "(".repeat(depth), ")".repeat(depth));
        // Run on a small stack: the check must not recurse per level.
        let err = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let tokens: TokenStream = src.parse().unwrap();
                parse(tokens).map(|_| ()).unwrap_err().to_string()
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(err.contains("nest more than"), "{err}");
        // Just at the bound is still parsed (and judged by the later stages).
        let ok = format!(
            "dense({}5{})",
            "(".repeat(MAX_DELIMITER_DEPTH - 1),
            ")".repeat(MAX_DELIMITER_DEPTH - 1)
        );
        assert!(parse(ok.parse().unwrap()).is_ok());
    }
}
