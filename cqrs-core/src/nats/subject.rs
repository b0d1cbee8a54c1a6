//! Subjects: `<prefix>.<stream type>.<stream id>.<event name>`, each part
//! one subject token.
//!
//! NATS splits subjects at `.` and gives `*` and `>` a meaning; it allows
//! no whitespace. Stream ids and event names may contain all of these
//! (`account.opened` is a common event name), so each part is encoded: an
//! ASCII letter, digit, `-` or `_` stands for itself, and every other byte
//! of its UTF-8 is `%` and two hex digits. The encoding is reversible and
//! keeps ordinary ids readable (`acc-42`), so a consumer can filter by
//! subject (`cqrs.account.*.account%2Edeposited`).

/// Encodes one part of a subject as one token.
///
/// ```
/// # use cqrs_core::nats::encode_token;
/// assert_eq!(encode_token("acc-42"), "acc-42");
/// assert_eq!(encode_token("account.opened"), "account%2Eopened");
/// assert_eq!(encode_token("a b*>"), "a%20b%2A%3E");
/// assert_eq!(encode_token("é"), "%C3%A9");
/// ```
pub fn encode_token(part: &str) -> String {
    let mut token = String::with_capacity(part.len());
    for byte in part.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            token.push(char::from(byte));
        } else {
            token.push('%');
            token.push(hex(byte >> 4));
            token.push(hex(byte & 0x0f));
        }
    }
    if token.is_empty() {
        // An empty token is no token: `%` alone stands for the empty part.
        token.push('%');
    }
    token
}

/// Decodes a token made by [`encode_token`]; `None` when it is not one.
///
/// ```
/// # use cqrs_core::nats::{decode_token, encode_token};
/// for part in ["acc-42", "account.opened", "a b*>", "é", ""] {
///     assert_eq!(decode_token(&encode_token(part)).as_deref(), Some(part));
/// }
/// assert_eq!(decode_token("%zz"), None);
/// ```
pub fn decode_token(token: &str) -> Option<String> {
    if token == "%" {
        return Some(String::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let high = unhex(*bytes.get(i + 1)?)?;
                let low = unhex(*bytes.get(i + 2)?)?;
                out.push(high << 4 | low);
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// The subject an event is published on.
pub(crate) fn subject(prefix: &str, aggregate: &str, id: &str, event: &str) -> String {
    format!(
        "{prefix}.{}.{}.{}",
        encode_token(aggregate),
        encode_token(id),
        encode_token(event)
    )
}

fn hex(nibble: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(nibble & 0x0f)])
}

fn unhex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_is_one_valid_token_and_comes_back() {
        let parts = [
            "plain",
            "with.dots.and spaces",
            "*>\t\r\n",
            "naïve/ünïcode/🚀",
            "%41 already encoded?",
            "",
        ];
        for part in parts {
            let token = encode_token(part);
            assert!(!token.is_empty());
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'%'),
                "{token}"
            );
            assert_eq!(decode_token(&token).as_deref(), Some(part), "{token}");
        }
        assert_eq!(
            subject("cqrs", "account", "a.1", "account.opened"),
            "cqrs.account.a%2E1.account%2Eopened"
        );
    }
}
