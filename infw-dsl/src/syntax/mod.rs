//! Stage 1, syntax: tokens → a list of layer calls, each keeping its spans.
//!
//! Only the shape is checked here (`name` or `name(args)`, arguments `value` or
//! `key = value`); names and values are judged by the `ir` stage.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{parenthesized, Expr, Ident, Token};

/// One layer as written: `relu`, `leaky_relu(0.1)`, `dense(512, w_std = 1.4)`.
#[derive(Debug, Clone)]
pub struct LayerCall {
    pub name: Ident,
    /// `None` when written without parentheses.
    pub args: Option<Args>,
}

/// The parenthesised arguments of a layer call.
#[derive(Debug, Clone)]
pub struct Args {
    pub span: Span,
    pub list: Vec<Arg>,
}

/// One argument: positional (`512`) or named (`w_std = 1.4`).
#[derive(Debug, Clone)]
pub struct Arg {
    pub key: Option<Ident>,
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

impl Parse for LayerCall {
    fn parse(input: ParseStream) -> syn::Result<Self> {
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
                "expected a layer name such as `dense(512)`, `relu`, `erf`",
            )
        })?;
        let args = if input.peek(syn::token::Paren) {
            let content;
            let paren = parenthesized!(content in input);
            let list = Punctuated::<Arg, Token![,]>::parse_terminated(&content)?;
            Some(Args {
                span: paren.span.join(),
                list: list.into_iter().collect(),
            })
        } else {
            None
        };
        Ok(LayerCall { name, args })
    }
}

/// The whole body of `network!`: layer calls separated by whitespace.
pub fn parse(input: TokenStream) -> syn::Result<Vec<LayerCall>> {
    let parser = |stream: ParseStream| {
        let mut layers = Vec::new();
        while !stream.is_empty() {
            layers.push(stream.parse::<LayerCall>()?);
        }
        Ok(layers)
    };
    parser.parse2(input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn parses_names_positional_and_named_arguments() {
        let layers = parse(quote!(dense(512, w_std = 1.5) relu leaky_relu(0.1))).unwrap();
        assert_eq!(layers.len(), 3);
        assert_eq!(layers[0].name, "dense");
        let args = layers[0].args.as_ref().unwrap();
        assert!(args.list[0].key.is_none());
        assert_eq!(args.list[1].key.as_ref().unwrap(), "w_std");
        assert!(layers[1].args.is_none());
    }

    #[test]
    fn rejects_comma_separators() {
        let err = parse(quote!(dense(4), relu)).unwrap_err();
        assert!(err.to_string().contains("whitespace"));
    }
}
