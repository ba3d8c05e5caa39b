//! FlexFactor's webhook signature scheme (W1), signing side: used by the simulator to deliver
//! webhooks, and by tests. The verifier in [`super::webhook`] uses the same primitives.
//!
//! ```text
//! x-fc-content-sha512 = base64(SHA-512(body))
//! string to sign      = "POST\n" + nonce + ";" + date + ";" + host + ";" + content hash
//! x-fc-authorization  = "HMAC-SHA512 SignedHeaders=x-fc-nonce;x-fc-date;host;x-fc-content-sha512&Signature=" + base64(HMAC-SHA512(key, string to sign))
//! x-fc-signature      = base64(HMAC-SHA512(key, body))
//! key                 = base64-decode(HMACSigningKey)
//! ```

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha512};

/// HMAC-SHA512.
pub(crate) type HmacSha512 = Hmac<Sha512>;

/// `x-fc-nonce`.
pub const HEADER_NONCE: &str = "x-fc-nonce";
/// `x-fc-date` (RFC 1123).
pub const HEADER_DATE: &str = "x-fc-date";
/// `x-fc-content-sha512`.
pub const HEADER_CONTENT_SHA512: &str = "x-fc-content-sha512";
/// `x-fc-authorization`.
pub const HEADER_AUTHORIZATION: &str = "x-fc-authorization";
/// `x-fc-signature` (HMAC over the body alone).
pub const HEADER_SIGNATURE: &str = "x-fc-signature";
/// The authorization scheme word.
pub const AUTH_SCHEME: &str = "HMAC-SHA512";
/// The signed headers, in signing order.
pub const SIGNED_HEADERS: &str = "x-fc-nonce;x-fc-date;host;x-fc-content-sha512";

/// Why a webhook key is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookKeyError {
    /// The HMACSigningKey is empty (S1).
    #[error("the HMAC signing key is empty")]
    Empty,
    /// The HMACSigningKey is not base64 (the key itself is never shown).
    #[error("the HMAC signing key is not valid base64")]
    NotBase64,
}

/// The webhook HMAC key (the base64-decoded HMACSigningKey). Holds only the keyed HMAC state;
/// `Debug` shows nothing of it.
#[derive(Clone)]
pub struct WebhookKey {
    mac: HmacSha512,
}

impl std::fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookKey([REDACTED])")
    }
}

impl WebhookKey {
    /// From the HMACSigningKey as the portal gives it: base64 text (surrounding whitespace
    /// ignored).
    pub fn from_base64(key: &SecretString) -> Result<Self, WebhookKeyError> {
        let text = key.expose_secret().trim();
        if text.is_empty() {
            return Err(WebhookKeyError::Empty);
        }
        let bytes = STANDARD
            .decode(text)
            .map_err(|_| WebhookKeyError::NotBase64)?;
        Self::from_bytes(&bytes)
    }

    /// From the raw key bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WebhookKeyError> {
        if bytes.is_empty() {
            return Err(WebhookKeyError::Empty);
        }
        // HMAC accepts keys of any length; the error case cannot happen for Hmac<Sha512>.
        let mac = <HmacSha512 as Mac>::new_from_slice(bytes).map_err(|_| WebhookKeyError::Empty)?;
        Ok(WebhookKey { mac })
    }

    /// A fresh keyed HMAC.
    pub(crate) fn mac(&self) -> HmacSha512 {
        self.mac.clone()
    }

    /// base64(HMAC-SHA512(key, data)).
    pub fn sign_base64(&self, data: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(data);
        STANDARD.encode(mac.finalize().into_bytes())
    }
}

/// base64(SHA-512(body)): the `x-fc-content-sha512` value.
pub fn content_sha512(body: &[u8]) -> String {
    STANDARD.encode(Sha512::digest(body))
}

/// `"POST\n" + nonce + ";" + date + ";" + host + ";" + content_hash`.
pub fn string_to_sign(nonce: &str, date: &str, host: &str, content_hash: &str) -> String {
    format!("POST\n{nonce};{date};{host};{content_hash}")
}

/// A time in the `x-fc-date` form (RFC 1123, e.g. `Mon, 20 Mar 2023 17:16:40 GMT`).
pub fn format_fc_date(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// The headers of a signed delivery (Host aside: it is the receiver's host, set by the sender's
/// HTTP client from the URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedWebhookHeaders {
    /// `x-fc-nonce`.
    pub nonce: String,
    /// `x-fc-date`.
    pub date: String,
    /// `x-fc-content-sha512`.
    pub content_sha512: String,
    /// `x-fc-authorization`.
    pub authorization: String,
    /// `x-fc-signature`.
    pub signature: String,
}

impl SignedWebhookHeaders {
    /// The five headers as (name, value) pairs.
    pub fn pairs(&self) -> [(&'static str, &str); 5] {
        [
            (HEADER_NONCE, self.nonce.as_str()),
            (HEADER_DATE, self.date.as_str()),
            (HEADER_CONTENT_SHA512, self.content_sha512.as_str()),
            (HEADER_AUTHORIZATION, self.authorization.as_str()),
            (HEADER_SIGNATURE, self.signature.as_str()),
        ]
    }

    /// The five headers as an [`http::HeaderMap`]. Fails only when the nonce or date given to the
    /// signer are not valid header text.
    pub fn to_header_map(&self) -> Result<http::HeaderMap, http::header::InvalidHeaderValue> {
        let mut map = http::HeaderMap::with_capacity(5);
        for (name, value) in self.pairs() {
            map.insert(
                http::header::HeaderName::from_static(name),
                http::HeaderValue::from_str(value)?,
            );
        }
        Ok(map)
    }
}

/// Signs a delivery the way FlexFactor does.
///
/// `host` is the receiver's host (no scheme, no path), `date` the `x-fc-date` text (see
/// [`format_fc_date`]), `nonce` any unique text (FlexFactor uses 32 hex digits).
pub fn sign_webhook(
    key: &WebhookKey,
    host: &str,
    nonce: &str,
    date: &str,
    body: &[u8],
) -> SignedWebhookHeaders {
    let content = content_sha512(body);
    let signature = key.sign_base64(string_to_sign(nonce, date, host, &content).as_bytes());
    SignedWebhookHeaders {
        nonce: nonce.to_string(),
        date: date.to_string(),
        authorization: format!(
            "{AUTH_SCHEME} SignedHeaders={SIGNED_HEADERS}&Signature={signature}"
        ),
        content_sha512: content,
        signature: key.sign_base64(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn fc_date_is_rfc1123() {
        let t = Utc.with_ymd_and_hms(2023, 3, 20, 17, 16, 40).unwrap();
        assert_eq!(format_fc_date(t), "Mon, 20 Mar 2023 17:16:40 GMT");
    }

    /// S1: the key never shows in Debug, and a bad key is refused without echoing it.
    #[test]
    fn s1_key_is_redacted_and_bad_keys_refused() {
        let key = WebhookKey::from_base64(&SecretString::from("c2VjcmV0")).unwrap();
        assert_eq!(format!("{key:?}"), "WebhookKey([REDACTED])");
        assert_eq!(
            WebhookKey::from_base64(&SecretString::from("")).unwrap_err(),
            WebhookKeyError::Empty
        );
        let err = WebhookKey::from_base64(&SecretString::from("not base64!!")).unwrap_err();
        assert!(!err.to_string().contains("not base64!!"));
    }
}
