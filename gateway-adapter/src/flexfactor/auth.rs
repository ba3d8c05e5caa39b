//! The access-token cache (F1): one token, reused until shortly before its `expires`, fetched
//! again at most once per rejection, shared by all concurrent callers (single flight).
//!
//! The cache knows nothing about HTTP: it is handed the fetch as a future, so it can be tested
//! alone. Time comes from the domain's [`Clock`].

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use salvage_domain::Clock;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

/// A bearer token and when it expires. `Debug` hides the token.
#[derive(Clone)]
pub struct AccessToken {
    value: SecretString,
    expires_at: DateTime<Utc>,
    generation: u64,
}

impl AccessToken {
    /// A token as fetched; the cache numbers it when it stores it.
    pub fn new(value: SecretString, expires_at: DateTime<Utc>) -> Self {
        AccessToken {
            value,
            expires_at,
            generation: 0,
        }
    }

    /// When FlexFactor said the token expires.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }

    /// Which fetch of the cache produced it (1 for the first).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The token, for the `Authorization` header only.
    pub(crate) fn expose(&self) -> &str {
        self.value.expose_secret()
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("generation", &self.generation)
            .finish()
    }
}

/// The cache of one client's access token.
pub struct TokenCache {
    slot: Mutex<Option<AccessToken>>,
    clock: Arc<dyn Clock>,
    margin: Duration,
    fetches: AtomicU64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("margin", &self.margin)
            .field("fetches", &self.fetches.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache whose tokens are replaced `margin` before they expire.
    pub fn new(clock: Arc<dyn Clock>, margin: Duration) -> Self {
        TokenCache {
            slot: Mutex::new(None),
            clock,
            margin,
            fetches: AtomicU64::new(0),
        }
    }

    /// How many times a token was fetched.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn usable(&self, token: &AccessToken) -> bool {
        self.clock.now() < token.expires_at - self.margin
    }

    /// The cached token while it is usable; otherwise one caller fetches a new one while the
    /// others wait for it (the lock is held across the fetch).
    pub async fn get<F, Fut, E>(&self, fetch: F) -> Result<AccessToken, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken, E>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(token) = slot.as_ref() {
            if self.usable(token) {
                return Ok(token.clone());
            }
        }
        self.fetch_into(&mut slot, fetch).await
    }

    /// After FlexFactor answered 401 to `rejected`: a new token, fetched once. When another caller
    /// already replaced that token, its replacement is returned without a second fetch.
    pub async fn refresh_after_rejection<F, Fut, E>(
        &self,
        rejected: &AccessToken,
        fetch: F,
    ) -> Result<AccessToken, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken, E>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(token) = slot.as_ref() {
            if token.generation != rejected.generation && self.usable(token) {
                return Ok(token.clone());
            }
        }
        self.fetch_into(&mut slot, fetch).await
    }

    /// Forgets the cached token.
    pub async fn clear(&self) {
        *self.slot.lock().await = None;
    }

    async fn fetch_into<F, Fut, E>(
        &self,
        slot: &mut Option<AccessToken>,
        fetch: F,
    ) -> Result<AccessToken, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken, E>>,
    {
        *slot = None;
        let mut token = fetch().await?;
        token.generation = self.fetches.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(
            generation = token.generation,
            expires_at = %token.expires_at,
            "FlexFactor access token fetched"
        );
        *slot = Some(token.clone());
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use salvage_domain::ManualClock;
    use std::convert::Infallible;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn token(expires: DateTime<Utc>) -> Result<AccessToken, Infallible> {
        Ok(AccessToken::new(SecretString::from("t"), expires))
    }

    /// F1: reused until shortly before expiry, then fetched again.
    #[tokio::test]
    async fn f1_token_reused_until_margin_before_expiry() {
        let clock = Arc::new(ManualClock::new(start()));
        let cache = TokenCache::new(clock.clone(), Duration::seconds(60));
        let exp = start() + Duration::minutes(10);
        let a = cache.get(|| async { token(exp) }).await.unwrap();
        clock.advance(Duration::minutes(8));
        let b = cache.get(|| async { token(exp) }).await.unwrap();
        assert_eq!(a.generation(), b.generation());
        clock.advance(Duration::seconds(61));
        let c = cache
            .get(|| async { token(exp + Duration::minutes(10)) })
            .await
            .unwrap();
        assert_eq!(c.generation(), 2);
        assert_eq!(cache.fetch_count(), 2);
    }

    /// F1: a rejected token is replaced once, even when several callers saw the rejection.
    #[tokio::test]
    async fn f1_rejection_refreshes_once() {
        let clock = Arc::new(ManualClock::new(start()));
        let cache = TokenCache::new(clock, Duration::seconds(60));
        let exp = start() + Duration::minutes(10);
        let a = cache.get(|| async { token(exp) }).await.unwrap();
        let b = cache
            .refresh_after_rejection(&a, || async { token(exp) })
            .await
            .unwrap();
        let c = cache
            .refresh_after_rejection(&a, || async { token(exp) })
            .await
            .unwrap();
        assert_eq!(b.generation(), 2);
        assert_eq!(c.generation(), 2);
        assert!(!format!("{a:?}").contains("\"t\""));
    }
}
