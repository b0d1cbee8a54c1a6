//! The rules a command must follow.

use syn::{Ident, Meta, Type};

use super::parse::{IdField, Input};
use crate::check::{self, Structs};
use crate::diag::Ctxt;

/// A checked command, ready to expand.
pub(crate) struct Command<'a> {
    /// The type's ident.
    pub(crate) ident: &'a Ident,
    /// The target aggregate.
    pub(crate) aggregate: &'a Type,
    /// The command name.
    pub(crate) name: String,
    /// The `async` flag, as written.
    pub(crate) is_async: Option<&'a Ident>,
    /// Whether dispatch by name ignores unknown fields.
    pub(crate) allow_unknown_fields: bool,
    /// The `#[id]` field.
    pub(crate) id: &'a IdField<'a>,
    /// The JSON Schema of its body.
    pub(crate) schema: String,
}

/// Checks every rule, reporting each broken one to `cx`.
pub(crate) fn validate<'a>(cx: &Ctxt, input: &'a Input<'a>) -> Option<Command<'a>> {
    command_is_a_struct(cx, input);
    command_is_not_generic(cx, input);
    let aggregate = aggregate_is_given(cx, input).filter(|ty| aggregate_is_a_type(cx, ty));
    id_has_no_arguments(cx, input);
    let id = if id_is_on_a_field(cx, input) {
        exactly_one_id(cx, input)
    } else {
        None
    };
    let name = check::name_or_ident(cx, input.name.as_ref(), input.ident);
    Some(Command {
        ident: input.ident,
        aggregate: aggregate?,
        name: name?,
        is_async: input.is_async.as_ref(),
        allow_unknown_fields: input.allow_unknown_fields.is_some(),
        id: id?,
        schema: crate::json_schema::of(input.original),
    })
}

// A command is data: a struct (named or tuple; its `#[id]` field names the
// target instance).
fn command_is_a_struct(cx: &Ctxt, input: &Input<'_>) {
    check::struct_shape(cx, input.original, "Command", Structs::Any);
}

// A command has one concrete type per name: no generics.
fn command_is_not_generic(cx: &Ctxt, input: &Input<'_>) {
    check::no_generics(cx, &input.original.generics, "Command");
}

// `aggregate = X` is required: the aggregate the command changes.
fn aggregate_is_given<'a>(cx: &Ctxt, input: &'a Input<'a>) -> Option<&'a Type> {
    if input.aggregate.is_none() && !input.mentioned.contains(&"aggregate") && !input.incomplete {
        cx.error_at(
            input.missing_span,
            "missing `#[command(aggregate = <type>)]`: the aggregate this command changes",
        );
    }
    input.aggregate.as_ref()
}

// `aggregate = X` names the aggregate by its type's path: not `Self` (the
// command itself), a reference or a trait object.
fn aggregate_is_a_type(cx: &Ctxt, ty: &Type) -> bool {
    check::plain_type(cx, "aggregate", ty, "an aggregate type")
}

// `#[id]` marks a field; on the struct itself it is reported there.
fn id_is_on_a_field(cx: &Ctxt, input: &Input<'_>) -> bool {
    for attr in &input.misplaced_ids {
        cx.error_spanned_by(
            attr,
            "`#[id]` goes on a field: the one that holds the id of the target aggregate",
        );
    }
    input.misplaced_ids.is_empty()
}

// `#[id]` is a bare marker: `#[id(..)]` and `#[id = ..]` are reported on
// their arguments.
fn id_has_no_arguments(cx: &Ctxt, input: &Input<'_>) {
    for id in &input.ids {
        match &id.attr.meta {
            Meta::Path(_) => {}
            Meta::List(list) => cx.error_at(
                list.delimiter.span().join(),
                "expected `#[id]` without arguments",
            ),
            Meta::NameValue(nv) => cx.error_spanned_by(
                {
                    let (eq, value) = (&nv.eq_token, &nv.value);
                    quote::quote!(#eq #value)
                },
                "expected `#[id]` without arguments",
            ),
        }
    }
}

// Exactly one field is `#[id]`: none is reported on the type's name, a second
// one on its `#[id]`.
fn exactly_one_id<'a>(cx: &Ctxt, input: &'a Input<'a>) -> Option<&'a IdField<'a>> {
    let mut ids = input.ids.iter();
    let Some(first) = ids.next() else {
        if let syn::Data::Struct(data) = &input.original.data {
            let message = if data.fields.is_empty() {
                "a command needs a field marked `#[id]` that holds the id of the target aggregate, \
                 and this struct has no fields"
            } else {
                "missing `#[id]`: mark the field that holds the id of the target aggregate"
            };
            cx.error_at(input.ident.span(), message);
        }
        return None;
    };
    let mut ok = true;
    for extra in ids {
        cx.error_spanned_by(
            extra.attr,
            "a command has one `#[id]` field, the id of its target aggregate; this is a second one",
        );
        ok = false;
    }
    ok.then_some(first)
}
