//! Example domains.
