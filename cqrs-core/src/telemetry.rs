//! Traces that follow an event through the log.
//!
//! Every event carries the W3C trace context of the span that appended it,
//! in [`Metadata::traceparent`]. With feature `otel` and a
//! [`tracing-opentelemetry`](https://docs.rs/tracing-opentelemetry) layer in
//! the application's subscriber:
//!
//! - the `command` span continues the trace the caller gave
//!   ([`Metadata::traceparent`], or the HTTP adapter's `traceparent`
//!   header), and the command's events carry the `command` span's own
//!   context;
//! - every consumer's batch span (`projection_batch`, `process_batch`,
//!   `relay_batch`, and a read side's `projection_batch` fed from JetStream)
//!   links to the command spans whose events it handled, one link per span;
//! - a process manager's commands continue the trace of the event that
//!   triggered them, and its deadline events carry the trace of the event
//!   that started the instance, so one workflow is one trace from the
//!   first command to the last, a refund after a timeout included.
//!
//! A consumer's batch does not become a child of a command: it handles the
//! events of many commands at once, and runs long after them. That is what
//! span links are for.
//!
//! Without the feature, a `traceparent` the caller gives is stored with the
//! events as it is, so a process that exports traces can still link to the
//! caller's span. `cargo run --bin bank-traced` shows the spans of a few
//! commands and of the projections and the process manager that handled
//! their events.

use std::sync::Arc;

use crate::record::{Metadata, RecordedEvent};

/// The parts of a W3C `traceparent` (version `00`):
/// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`, in lowercase, and
/// neither id all zeros.
// Without `otel` only whether it parses matters.
#[cfg_attr(not(feature = "otel"), allow(dead_code))]
struct TraceParent<'a> {
    trace_id: &'a str,
    span_id: &'a str,
    flags: &'a str,
}

impl<'a> TraceParent<'a> {
    fn parse(text: &'a str) -> Option<Self> {
        let mut parts = text.split('-');
        let (Some("00"), Some(trace_id), Some(span_id), Some(flags), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let hex = |part: &str, len: usize| {
            part.len() == len
                && part
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let zero = |part: &str| part.bytes().all(|b| b == b'0');
        (hex(trace_id, 32)
            && hex(span_id, 16)
            && hex(flags, 2)
            && !zero(trace_id)
            && !zero(span_id))
        .then_some(Self {
            trace_id,
            span_id,
            flags,
        })
    }
}

/// Whether `text` is a well-formed W3C `traceparent`.
pub(crate) fn is_traceparent(text: &str) -> bool {
    TraceParent::parse(text).is_some()
}

/// Puts the `command` span in the trace that `metadata` continues, and
/// gives `metadata` (and so the command's events) the span's own context.
pub(crate) fn continue_trace(span: &tracing::Span, metadata: &mut Metadata) {
    #[cfg(feature = "otel")]
    otel::continue_trace(span, metadata);
    #[cfg(not(feature = "otel"))]
    let _ = (span, metadata);
}

/// Links a consumer's batch span to the spans that appended its events.
pub(crate) fn link_events(span: &tracing::Span, events: &[Arc<RecordedEvent>]) {
    #[cfg(feature = "otel")]
    otel::link_events(span, events);
    #[cfg(not(feature = "otel"))]
    let _ = (span, events);
}

#[cfg(feature = "otel")]
mod otel {
    use std::collections::HashSet;
    use std::sync::Arc;

    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use super::TraceParent;
    use crate::record::{Metadata, RecordedEvent};

    fn span_context(text: &str) -> Option<SpanContext> {
        let parent = TraceParent::parse(text)?;
        Some(SpanContext::new(
            TraceId::from_hex(parent.trace_id).ok()?,
            SpanId::from_hex(parent.span_id).ok()?,
            TraceFlags::new(u8::from_str_radix(parent.flags, 16).ok()?),
            true,
            TraceState::default(),
        ))
    }

    fn traceparent(context: &SpanContext) -> String {
        format!(
            "00-{}-{}-{:02x}",
            context.trace_id(),
            context.span_id(),
            context.trace_flags().to_u8()
        )
    }

    pub(super) fn continue_trace(span: &tracing::Span, metadata: &mut Metadata) {
        if let Some(parent) = metadata.traceparent.as_deref().and_then(span_context) {
            // Fails only when no OpenTelemetry layer is installed: then
            // there is no trace to continue either.
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
        }
        let own = span.context().span().span_context().clone();
        if own.is_valid() {
            metadata.traceparent = Some(traceparent(&own));
        }
    }

    pub(super) fn link_events(span: &tracing::Span, events: &[Arc<RecordedEvent>]) {
        // No OpenTelemetry layer (only logging, say): nothing to link to.
        if !span.context().span().span_context().is_valid() {
            return;
        }
        // The events of one command share one context.
        let mut linked = HashSet::new();
        for event in events {
            if let Some(text) = event.metadata.traceparent.as_deref()
                && linked.insert(text)
                && let Some(context) = span_context(text)
            {
                span.add_link(context);
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_context_goes_out_as_it_came_in() {
            let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
            let context = span_context(text).unwrap();
            assert!(context.is_valid() && context.is_remote() && context.is_sampled());
            assert_eq!(traceparent(&context), text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_traceparent;

    #[test]
    fn only_well_formed_contexts_are_kept() {
        assert!(is_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        for text in [
            "",
            "00",
            // Unknown version, upper case, all-zero ids, wrong lengths, more parts.
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bx-01",
        ] {
            assert!(!is_traceparent(text), "{text}");
        }
    }
}
