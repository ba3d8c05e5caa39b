//! Where the fake delivers webhooks ([`WebhookTarget`]): the URL and the host it signs.

use super::error::FakeError;

/// Where deliveries go.
#[derive(Debug, Clone)]
pub(crate) struct WebhookTarget {
    pub url: reqwest::Url,
    /// The `Host` header and the signed host: the URL's host, with its port when the URL names
    /// one that is not the scheme's default.
    pub host: String,
}

impl WebhookTarget {
    pub(crate) fn parse(url: &str) -> Result<Self, FakeError> {
        let refuse = |reason: &str| FakeError::WebhookUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let parsed = reqwest::Url::parse(url.trim()).map_err(|e| refuse(&e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(refuse("not http(s)"));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| refuse("no host"))?
            .to_string();
        let host = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        Ok(WebhookTarget { url: parsed, host })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_includes_an_explicit_port() {
        let t = WebhookTarget::parse("http://127.0.0.1:8080/webhooks/flexfactor").unwrap();
        assert_eq!(t.host, "127.0.0.1:8080");
        let t = WebhookTarget::parse("https://crm.example.com/hook").unwrap();
        assert_eq!(t.host, "crm.example.com");
        assert!(WebhookTarget::parse("ftp://x/").is_err());
        assert!(WebhookTarget::parse("not a url").is_err());
    }
}
