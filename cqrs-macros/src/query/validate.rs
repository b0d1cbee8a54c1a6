//! The rules a query must follow.

use syn::{Ident, Type};

use super::parse::Input;
use crate::check::{self, Structs};
use crate::diag::Ctxt;

/// A checked query, ready to expand.
pub(crate) struct Query<'a> {
    /// The type's ident.
    pub(crate) ident: &'a Ident,
    /// The query name.
    pub(crate) name: String,
    /// The projection that answers it.
    pub(crate) projection: &'a Type,
    /// The answer's type.
    pub(crate) output: &'a Type,
    /// Whether dispatch by name ignores unknown fields.
    pub(crate) allow_unknown_fields: bool,
    /// The JSON Schema of its body.
    pub(crate) schema: String,
}

/// Checks every rule, reporting each broken one to `cx`.
pub(crate) fn validate<'a>(cx: &Ctxt, input: &'a Input<'a>) -> Option<Query<'a>> {
    query_is_a_struct(cx, input);
    query_is_not_generic(cx, input);
    let present = attribute_is_present(cx, input);
    if present {
        required_keys_are_given(cx, input);
    }
    let projection = input
        .projection
        .as_ref()
        .filter(|ty| check::plain_type(cx, "projection", ty, "a projection type"));
    let output = input
        .output
        .as_ref()
        .filter(|ty| check::concrete_type(cx, "output", ty));
    let name = check::name_or_ident(cx, input.name.as_ref(), input.ident);
    Some(Query {
        ident: input.ident,
        name: name?,
        projection: projection?,
        output: output?,
        allow_unknown_fields: input.allow_unknown_fields.is_some(),
        schema: crate::json_schema::of(input.original),
    })
}

// A query is data: a struct of any kind, unit structs included.
fn query_is_a_struct(cx: &Ctxt, input: &Input<'_>) {
    check::struct_shape(cx, input.original, "Query", Structs::Any);
}

// One query name is one concrete type: no generics.
fn query_is_not_generic(cx: &Ctxt, input: &Input<'_>) {
    check::no_generics(cx, &input.original.generics, "Query");
}

// `#[query(..)]` is required: it names the projection and the output; reported
// on the type's name when absent.
fn attribute_is_present(cx: &Ctxt, input: &Input<'_>) -> bool {
    if !input.has_attribute {
        cx.error_at(
            input.ident.span(),
            "missing `#[query(projection = <type>, output = <type>)]` on this query",
        );
    }
    input.has_attribute
}

// `projection = P` and `output = T` are required; every missing one is
// named in one error.
fn required_keys_are_given(cx: &Ctxt, input: &Input<'_>) {
    check::required_keys(
        cx,
        "query",
        input.missing_span,
        &input.mentioned,
        input.incomplete,
        &[
            (
                "projection",
                "projection = <type>",
                "the projection that answers this query",
            ),
            ("output", "output = <type>", "the type of the answer"),
        ],
    );
}
