//! Tracking (SERVICE.md §6, `[tracking]`): the signed tokens of an email's
//! tracked links — a click (`/t/c/{token}`, a 302 to the original URL), an
//! open (`/t/o/{token}`, a 1×1 GIF) and the unsubscribe page
//! (`/u/{token}`) — and [`Tracking`], the [`EmailDecorator`] that rewrites
//! an email's HTML to use them. The HTTP side is
//! [`crate::service::tracking_http`]; docs/tracking.md says what is
//! journaled.
//!
//! A token is `base64url(payload) "." base64url(tag)` (no padding): the
//! payload is the JSON array `[kind, message_id, user_id, journey,
//! template, channel]` (and, for a click, the URL), the tag its
//! HMAC-SHA256 under the configured secret, after a context string that
//! names the format. Everything a link's handler needs is in the token, so
//! the handler reads nothing but the token, and a URL to redirect to comes
//! only from a signed token: no open redirect.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use lol_html::html_content::ContentType;
use lol_html::{RewriteStrSettings, element, end, rewrite_str};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{EmailDecorator, Message};
use crate::service::config;

/// The routes, as the router spells them; the links are these with the
/// token in place of `{token}`.
pub const CLICK_ROUTE: &str = "/t/c/{token}";
pub const OPEN_ROUTE: &str = "/t/o/{token}";
pub const UNSUBSCRIBE_ROUTE: &str = "/u/{token}";

/// An `href` with exactly this value (after trimming) becomes the
/// message's unsubscribe link, untracked: a template's HTML cannot know
/// its token, so it names the place.
pub const UNSUBSCRIBE_PLACEHOLDER: &str = "%unsubscribe_url%";

/// The longest token a route reads (a click's carries its URL).
pub const MAX_TOKEN_CHARS: usize = 8 * 1024;

/// The shortest secret accepted.
pub const MIN_SECRET_CHARS: usize = 16;

/// What the tag signs before the payload: the format's name and version,
/// so a tag of another format (or another use of the same secret) never
/// verifies here.
const CONTEXT: &[u8] = b"journey-tracking-v1\n";

/// What a token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Click,
    Open,
    Unsubscribe,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::Click => "c",
            Kind::Open => "o",
            Kind::Unsubscribe => "u",
        }
    }

    fn route(self) -> &'static str {
        match self {
            Kind::Click => CLICK_ROUTE,
            Kind::Open => OPEN_ROUTE,
            Kind::Unsubscribe => UNSUBSCRIBE_ROUTE,
        }
    }
}

/// What a verified token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub kind: Kind,
    pub message_id: String,
    pub user_id: String,
    pub journey: String,
    pub template: String,
    pub channel: String,
    /// The link's target (clicks only): an absolute `http(s)` URL.
    pub url: Option<String>,
}

impl Claims {
    /// The claims of a link of `kind` in `message`.
    pub fn of(kind: Kind, message: &Message, url: Option<&str>) -> Claims {
        Claims {
            kind,
            message_id: message.message_id.clone(),
            user_id: message.user_id.clone(),
            journey: message.journey.clone(),
            template: message.template.clone(),
            channel: message.channel.clone(),
            url: url.map(str::to_string),
        }
    }
}

/// What an unsubscribe records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptOut {
    /// `consent.<channel> = false`: the channel of the message only.
    Consent,
    /// `unsubscribed = true`: every non-transactional send.
    Unsubscribed,
}

/// Tokens, links and the email decorator of one deployment's `[tracking]`.
#[derive(Clone)]
pub struct Tracking {
    /// Without a trailing `/`.
    base_url: String,
    /// Keyed once; cloned for each token.
    mac: Hmac<Sha256>,
    opt_out: OptOut,
}

impl fmt::Debug for Tracking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracking")
            .field("base_url", &self.base_url)
            .field("secret", &"hidden")
            .field("opt_out", &self.opt_out)
            .finish()
    }
}

impl Tracking {
    /// Checks `[tracking]` and keys it; the error names the key at fault.
    pub fn new(config: &config::Tracking) -> Result<Tracking, String> {
        let base = url::Url::parse(config.base_url.trim()).map_err(|e| {
            format!(
                "`tracking.base_url = \"{}\"` is not a URL: {e}",
                config.base_url
            )
        })?;
        if !matches!(base.scheme(), "http" | "https")
            || base.query().is_some()
            || base.fragment().is_some()
            || base.cannot_be_a_base()
        {
            return Err(format!(
                "`tracking.base_url = \"{}\"` must be an http(s) URL without a query or fragment, \
                 such as `https://t.shop.example`",
                config.base_url
            ));
        }
        if config.secret.chars().count() < MIN_SECRET_CHARS {
            return Err(format!(
                "`tracking.secret` must be at least {MIN_SECRET_CHARS} characters (make one with \
                 `openssl rand -hex 32`)"
            ));
        }
        let opt_out = match config.opt_out.as_deref() {
            None | Some("consent") => OptOut::Consent,
            Some("unsubscribed") => OptOut::Unsubscribed,
            Some(other) => {
                return Err(format!(
                    "`tracking.opt_out = \"{other}\"`: write `consent` (an unsubscribe sets \
                     `consent.<channel> = false`) or `unsubscribed` (it sets `unsubscribed = true`)"
                ));
            }
        };
        let mac = Hmac::<Sha256>::new_from_slice(config.secret.as_bytes())
            .map_err(|e| format!("`tracking.secret` cannot key HMAC-SHA256: {e}"))?;
        Ok(Tracking {
            base_url: base.as_str().trim_end_matches('/').to_string(),
            mac,
            opt_out,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn opt_out(&self) -> OptOut {
        self.opt_out
    }

    /// The traits of the identify an unsubscribe from `channel` journals.
    pub fn opt_out_traits(&self, channel: &str) -> Value {
        match self.opt_out {
            OptOut::Consent => json!({ "consent": { channel: false } }),
            OptOut::Unsubscribed => json!({ "unsubscribed": true }),
        }
    }

    fn tag(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(CONTEXT);
        mac.update(payload);
        mac
    }

    /// The signed token of `claims`.
    pub fn token(&self, claims: &Claims) -> String {
        let mut fields = vec![
            claims.kind.tag(),
            &claims.message_id,
            &claims.user_id,
            &claims.journey,
            &claims.template,
            &claims.channel,
        ];
        if let Some(url) = &claims.url {
            fields.push(url);
        }
        // A list of strings always serialises.
        let payload = serde_json::to_vec(&fields).unwrap_or_default();
        let tag = self.tag(&payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The claims of `token` when it is a well-formed token of `kind`
    /// signed with this secret; `None` for anything else (tampered,
    /// truncated, signed with another secret, or of another kind).
    pub fn verify(&self, kind: Kind, token: &str) -> Option<Claims> {
        if token.len() > MAX_TOKEN_CHARS {
            return None;
        }
        let (payload, tag) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        // Constant time: how much of a forged tag is right never shows.
        self.tag(&payload).verify_slice(&tag).ok()?;
        let fields: Vec<String> = serde_json::from_slice(&payload).ok()?;
        let want = if kind == Kind::Click { 7 } else { 6 };
        if fields.len() != want || fields[0] != kind.tag() {
            return None;
        }
        let mut fields = fields.into_iter().skip(1);
        let mut next = || fields.next().unwrap_or_default();
        let claims = Claims {
            kind,
            message_id: next(),
            user_id: next(),
            journey: next(),
            template: next(),
            channel: next(),
            url: (kind == Kind::Click).then(&mut next),
        };
        // Only what rewriting puts in a click token is followed.
        if let Some(url) = &claims.url
            && trackable(url, "").is_none()
        {
            return None;
        }
        Some(claims)
    }

    /// The link of `claims`: `{base_url}/t/c/{token}` and its kin.
    pub fn link(&self, claims: &Claims) -> String {
        let route = claims.kind.route().trim_end_matches("{token}");
        format!("{}{route}{}", self.base_url, self.token(claims))
    }

    /// The message's HTML with every absolute `http(s)` link of an `<a>` or
    /// `<area>` sent through the click route (not `mailto:`, anchors,
    /// relative links, nor links already under `base_url`), the
    /// [`UNSUBSCRIBE_PLACEHOLDER`] made the unsubscribe link, and the open
    /// pixel before `</body>` (at the end when there is none).
    pub fn rewrite(&self, message: &Message, html: &str) -> Result<String, String> {
        let own = format!("{}/", self.base_url);
        let unsubscribe = self.link(&Claims::of(Kind::Unsubscribe, message, None));
        let pixel = format!(
            "<img src=\"{}\" width=\"1\" height=\"1\" alt=\"\" \
             style=\"display:block;border:0;width:1px;height:1px\">",
            self.link(&Claims::of(Kind::Open, message, None))
        );
        let placed = Rc::new(Cell::new(false));
        let at_body_end = placed.clone();
        let body_pixel = pixel.clone();
        let settings = RewriteStrSettings {
            element_content_handlers: vec![
                element!("a[href], area[href]", |el| {
                    let raw = el.get_attribute("href").unwrap_or_default();
                    let href = htmlize::unescape_attribute(raw.as_str());
                    let href = href.trim();
                    if href == UNSUBSCRIBE_PLACEHOLDER {
                        el.set_attribute("href", &unsubscribe)?;
                    } else if let Some(target) = trackable(href, &own) {
                        let claims = Claims::of(Kind::Click, message, Some(&target));
                        el.set_attribute("href", &self.link(&claims))?;
                    }
                    Ok(())
                }),
                element!("body", move |el| {
                    let placed = at_body_end.clone();
                    let pixel = body_pixel.clone();
                    // Only a body with an end tag in the text has a place
                    // before it; otherwise the pixel goes at the end.
                    let before_end: lol_html::EndTagHandler<'static> = Box::new(move |end| {
                        if !placed.replace(true) {
                            end.before(&pixel, ContentType::Html);
                        }
                        Ok(())
                    });
                    let _ = el.on_end_tag(before_end);
                    Ok(())
                }),
            ],
            document_content_handlers: vec![end!(|end| {
                if !placed.get() {
                    end.append(&pixel, ContentType::Html);
                }
                Ok(())
            })],
            ..RewriteStrSettings::new()
        };
        rewrite_str(html, settings).map_err(|e| e.to_string())
    }
}

/// The URL a link goes to, when it is one to track: an absolute `http` or
/// `https` URL, not under `own` (an empty `own` excludes nothing),
/// written as a browser would (`url`'s serialisation).
fn trackable(href: &str, own: &str) -> Option<String> {
    let url = url::Url::parse(href).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    let url = url.to_string();
    (own.is_empty() || !url.starts_with(own)).then_some(url)
}

impl EmailDecorator for Tracking {
    fn decorate(
        &self,
        message: &Message,
        html: Option<String>,
    ) -> (Option<String>, Option<String>) {
        let unsubscribe = self.link(&Claims::of(Kind::Unsubscribe, message, None));
        let html = html.map(|html| {
            // The rewriter fails only on its memory limit: the email then
            // goes with its links as written rather than not at all.
            self.rewrite(message, &html).unwrap_or(html)
        });
        (html, Some(unsubscribe))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracking(secret: &str) -> Tracking {
        Tracking::new(&config::Tracking {
            base_url: "https://t.shop.example/".into(),
            secret: secret.into(),
            opt_out: None,
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn message() -> Message {
        Message {
            message_id: "promo:ana:1:0".into(),
            user_id: "ana".into(),
            journey: "promo".into(),
            template: "sale".into(),
            channel: "email".into(),
            to: json!("ana@example.com"),
            subject: Some("Sale".into()),
            body: Some("text".into()),
            html: None,
            vars: serde_json::Map::new(),
            line: String::new(),
            attempt: 1,
            committed_ms: 0,
        }
    }

    /// The token of each link in `html` under `route`'s prefix.
    fn tokens<'a>(html: &'a str, route: &str) -> Vec<&'a str> {
        let prefix = format!(
            "https://t.shop.example{}",
            route.trim_end_matches("{token}")
        );
        html.match_indices(&prefix)
            .map(|(i, _)| {
                let rest = &html[i + prefix.len()..];
                &rest[..rest.find('"').unwrap_or(rest.len())]
            })
            .collect()
    }

    #[test]
    fn a_token_verifies_and_says_what_it_was_made_of() {
        let t = tracking("0123456789abcdef-secret");
        let claims = Claims::of(
            Kind::Click,
            &message(),
            Some("https://shop.example/a?b=1&c=2"),
        );
        let token = t.token(&claims);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "URL-safe: {token}"
        );
        assert_eq!(t.verify(Kind::Click, &token), Some(claims));
        let open = Claims::of(Kind::Open, &message(), None);
        assert_eq!(t.verify(Kind::Open, &t.token(&open)), Some(open));
    }

    #[test]
    fn tampered_truncated_foreign_and_misused_tokens_are_refused() {
        let t = tracking("0123456789abcdef-secret");
        let claims = Claims::of(Kind::Click, &message(), Some("https://shop.example/"));
        let token = t.token(&claims);
        let (payload, tag) = token.split_once('.').unwrap_or_default();
        // Every single-character change anywhere is refused.
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).unwrap_or_default();
            assert_eq!(t.verify(Kind::Click, &changed), None, "changed at {i}");
        }
        assert_eq!(t.verify(Kind::Click, &token[..token.len() - 1]), None);
        assert_eq!(t.verify(Kind::Click, payload), None);
        assert_eq!(t.verify(Kind::Click, &format!("{payload}.")), None);
        assert_eq!(t.verify(Kind::Click, &format!(".{tag}")), None);
        assert_eq!(t.verify(Kind::Click, ""), None);
        // Another URL under the same tag: an open redirect if it passed.
        let evil = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&[
                "c",
                "promo:ana:1:0",
                "ana",
                "promo",
                "sale",
                "email",
                "https://evil.example/",
            ])
            .unwrap_or_default(),
        );
        assert_eq!(t.verify(Kind::Click, &format!("{evil}.{tag}")), None);
        // Signed with another secret.
        let other = tracking("another-secret-of-16+");
        assert_eq!(other.verify(Kind::Click, &token), None);
        // A good token of one kind is no token of another.
        let open = t.token(&Claims::of(Kind::Open, &message(), None));
        assert_eq!(t.verify(Kind::Unsubscribe, &open), None);
        assert_eq!(t.verify(Kind::Click, &open), None);
        assert_eq!(
            t.verify(Kind::Click, &"A".repeat(MAX_TOKEN_CHARS + 1)),
            None
        );
    }

    #[test]
    fn links_are_rewritten_and_the_pixel_goes_before_the_body_end() {
        let t = tracking("0123456789abcdef-secret");
        let html = concat!(
            "<html><body><p>Hi</p>",
            "<a href=\"https://shop.example/cart?id=1&amp;utm=mail\">cart</a>",
            "<A HREF='http://shop.example/b'>b</A>",
            "<a href=\"mailto:help@shop.example\">mail</a>",
            "<a href=\"#top\">top</a>",
            "<a href=\"/relative\">rel</a>",
            "<a href=\" %unsubscribe_url% \">unsubscribe</a>",
            "<a href=\"https://t.shop.example/elsewhere\">own</a>",
            "<map><area href=\"https://shop.example/area\"></map>",
            "<link href=\"https://shop.example/style.css\" rel=\"stylesheet\">",
            "</body></html>"
        );
        let out = t
            .rewrite(&message(), html)
            .unwrap_or_else(|e| panic!("{e}"));
        let clicks = tokens(&out, CLICK_ROUTE);
        let urls: Vec<String> = clicks
            .iter()
            .filter_map(|tok| t.verify(Kind::Click, tok))
            .filter_map(|c| c.url)
            .collect();
        assert_eq!(
            urls,
            vec![
                "https://shop.example/cart?id=1&utm=mail",
                "http://shop.example/b",
                "https://shop.example/area",
            ],
            "{out}"
        );
        for kept in [
            "mailto:help@shop.example",
            "\"#top\"",
            "\"/relative\"",
            "https://t.shop.example/elsewhere",
            "https://shop.example/style.css",
        ] {
            assert!(out.contains(kept), "{kept} is left alone: {out}");
        }
        let unsubscribe = tokens(&out, UNSUBSCRIBE_ROUTE);
        assert_eq!(unsubscribe.len(), 1, "{out}");
        assert!(t.verify(Kind::Unsubscribe, unsubscribe[0]).is_some());
        let opens = tokens(&out, OPEN_ROUTE);
        assert_eq!(opens.len(), 1, "{out}");
        assert!(t.verify(Kind::Open, opens[0]).is_some());
        let pixel_at = out.find("/t/o/").unwrap_or(usize::MAX);
        assert!(pixel_at < out.find("</body>").unwrap_or(0), "{out}");
        assert!(out.ends_with("</body></html>"), "{out}");
    }

    #[test]
    fn without_a_body_end_the_pixel_goes_at_the_end() {
        let t = tracking("0123456789abcdef-secret");
        for html in [
            "<p>Hi <a href=\"https://x.example/\">x</a></p>",
            "<body><p>Hi",
        ] {
            let out = t
                .rewrite(&message(), html)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(tokens(&out, OPEN_ROUTE).len(), 1, "{out}");
            assert!(out.trim_end().ends_with('>'), "{out}");
            assert!(out.rfind("/t/o/") > out.rfind("Hi"), "{out}");
        }
    }

    #[test]
    fn the_decorator_gives_the_unsubscribe_url_with_or_without_html() {
        let t = tracking("0123456789abcdef-secret");
        let (html, unsubscribe) = t.decorate(&message(), None);
        assert_eq!(html, None);
        let url = unsubscribe.unwrap_or_default();
        let token = url
            .strip_prefix("https://t.shop.example/u/")
            .unwrap_or_else(|| panic!("{url}"));
        let claims = t.verify(Kind::Unsubscribe, token);
        assert_eq!(claims.map(|c| c.channel), Some("email".to_string()));
        let (html, _) = t.decorate(&message(), Some("<p>x</p>".into()));
        assert!(html.is_some_and(|h| h.contains("/t/o/")));
    }

    #[test]
    fn the_config_is_checked_and_the_secret_never_shows() {
        let good = config::Tracking {
            base_url: "https://t.shop.example".into(),
            secret: "0123456789abcdef-secret".into(),
            opt_out: Some("unsubscribed".into()),
        };
        let t = Tracking::new(&good).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.opt_out_traits("sms"), json!({ "unsubscribed": true }));
        assert!(!format!("{t:?}").contains("0123456789"));
        let with = |f: &dyn Fn(&mut config::Tracking)| {
            let mut c = good.clone();
            f(&mut c);
            Tracking::new(&c).err().unwrap_or_default()
        };
        assert!(with(&|c| c.base_url = "t.shop.example".into()).contains("base_url"));
        assert!(with(&|c| c.base_url = "ftp://t.shop.example".into()).contains("http(s)"));
        assert!(with(&|c| c.base_url = "https://t.example/?a=1".into()).contains("query"));
        assert!(with(&|c| c.secret = "short".into()).contains("tracking.secret"));
        assert!(with(&|c| c.opt_out = Some("all".into())).contains("opt_out"));
        let consent = with(&|c| c.opt_out = None);
        assert_eq!(consent, "");
    }
}
