//! What the HTTP providers (Twilio, FCM, APNs) share: reading their
//! settings, the wall clock they sign tokens with, and what an answer — or
//! its absence — means for an attempt (`Retry-After`, transport errors, a
//! body read within bounds).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;

use super::Outcome;

/// The most of an answer's body read; the rest is dropped unread, so a
/// provider (or something posing as one) cannot grow memory without bound.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

/// Wall-clock milliseconds as a provider reads them (to stamp and refresh
/// its tokens, to read a `Retry-After` date). Tests pass a clock they
/// move; everyone else [`wall_clock`].
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The machine's wall clock.
pub fn wall_clock() -> Clock {
    Arc::new(crate::service::core::wall_ms)
}

/// A provider's settings table as its own struct (whose
/// `deny_unknown_fields` names a stray key).
pub(crate) fn settings<T: DeserializeOwned>(table: &toml::Table) -> Result<T, String> {
    toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_string())
}

/// A `base_url` setting: an `http(s)://` URL, without its trailing `/`.
pub(crate) fn base_url(key: &str, text: &str) -> Result<String, String> {
    let url =
        reqwest::Url::parse(text).map_err(|e| format!("`{key} = \"{text}\"` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{key} = \"{text}\"` is not an http:// or https:// URL"
        ));
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// A setting holding a key either inline or as the path of the file that
/// holds it: inline when it starts like the key (`inline_start`).
pub(crate) fn inline_or_file(key: &str, text: &str, inline_start: &str) -> Result<String, String> {
    if text.trim_start().starts_with(inline_start) {
        return Ok(text.to_string());
    }
    std::fs::read_to_string(text).map_err(|e| format!("`{key}`: cannot read `{text}`: {e}"))
}

/// The attempt's outcome when no whole answer came: always transient (the
/// request may or may not have reached the provider; the next attempt
/// carries the same idempotency key).
pub(crate) fn transport_error(provider: &str, e: &reqwest::Error) -> Outcome {
    let what = if e.is_timeout() {
        "no answer in time"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "the connection failed"
    };
    // The URL is left out: it can carry an address (an APNs device token).
    let mut error = format!("{provider}: {what}");
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(cause) = source {
        error.push_str(": ");
        error.push_str(&cause.to_string());
        source = cause.source();
    }
    Outcome::Retry { error, after: None }
}

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date read
/// against `now_ms`; absent, unreadable or past, `None`.
pub(crate) fn retry_after(headers: &HeaderMap, now_ms: i64) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(text)
        .ok()?;
    let ms = at.as_millisecond().checked_sub(now_ms)?;
    u64::try_from(ms)
        .ok()
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis)
}

/// An answer's status, headers and body (at most [`BODY_LIMIT`] bytes,
/// lossily UTF-8).
pub(crate) struct Answer {
    pub status: reqwest::StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    /// Reads the answer; a body cut short by the connection is a transport
    /// error.
    pub(crate) async fn read(mut response: reqwest::Response) -> Result<Answer, reqwest::Error> {
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        while body.len() < BODY_LIMIT {
            match response.chunk().await? {
                Some(chunk) => {
                    body.extend_from_slice(&chunk[..chunk.len().min(BODY_LIMIT - body.len())])
                }
                None => break,
            }
        }
        Ok(Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// A transient answer's outcome: try again, no sooner than the
    /// provider's `Retry-After`.
    pub(crate) fn retry(&self, error: String, now_ms: i64) -> Outcome {
        Outcome::Retry {
            error,
            after: retry_after(&self.headers, now_ms),
        }
    }

    /// The body for an error message: trimmed and cut to a line's length.
    pub(crate) fn body_excerpt(&self) -> String {
        let body = self.body.trim();
        match body.char_indices().nth(200) {
            Some((cut, _)) => format!("{}…", &body[..cut]),
            None => body.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(retry_after: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(retry_after).unwrap());
        h
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(
            retry_after(&headers("120"), 0),
            Some(Duration::from_secs(120))
        );
        // RFC 9110's example date, read 10 s before it.
        let at = jiff::Timestamp::from_second(784_111_777)
            .unwrap()
            .as_millisecond();
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT"), at - 10_000),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT"), at + 1),
            None
        );
        assert_eq!(retry_after(&headers("soon"), 0), None);
        assert_eq!(retry_after(&HeaderMap::new(), 0), None);
    }

    #[test]
    fn base_urls_are_http_and_lose_their_slash() {
        assert_eq!(
            base_url("base_url", "https://api.twilio.com/").unwrap(),
            "https://api.twilio.com"
        );
        assert!(
            base_url("base_url", "ftp://x")
                .unwrap_err()
                .contains("not an http://")
        );
        assert!(
            base_url("base_url", "api.twilio.com")
                .unwrap_err()
                .contains("is not a URL")
        );
    }
}
