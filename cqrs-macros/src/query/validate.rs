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
}

/// Checks every rule, reporting each broken one to `cx`.
pub(crate) fn validate<'a>(cx: &Ctxt, input: &'a Input<'a>) -> Option<Query<'a>> {
    query_is_a_struct(cx, input);
    query_is_not_generic(cx, input);
    let present = attribute_is_present(cx, input);
    let projection = present.then(|| projection_is_given(cx, input)).flatten();
    let output = present.then(|| output_is_given(cx, input)).flatten();
    let name = check::name_or_ident(cx, input.name.as_ref(), input.ident);
    Some(Query {
        ident: input.ident,
        name: name?,
        projection: projection?,
        output: output?,
        allow_unknown_fields: input.allow_unknown_fields.is_some(),
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

// `projection = P` is required: the projection that answers.
fn projection_is_given<'a>(cx: &Ctxt, input: &'a Input<'a>) -> Option<&'a Type> {
    if input.projection.is_none() && !input.mentioned.contains(&"projection") {
        cx.error_at(
            input.missing_span,
            "missing `projection = <type>` in `#[query(..)]`: the projection that answers this query",
        );
    }
    input.projection.as_ref()
}

// `output = T` is required: the type of the answer.
fn output_is_given<'a>(cx: &Ctxt, input: &'a Input<'a>) -> Option<&'a Type> {
    if input.output.is_none() && !input.mentioned.contains(&"output") {
        cx.error_at(
            input.missing_span,
            "missing `output = <type>` in `#[query(..)]`: the type of the answer",
        );
    }
    input.output.as_ref()
}
