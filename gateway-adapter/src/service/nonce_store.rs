//! The webhook verifier's nonce store over the database (W2): a nonce is refused when any
//! process sharing the store has seen it within the tolerance.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::flexfactor::{NonceStore, NonceStoreError};
use crate::store::{webhook_book, Store};

pub struct SqlNonceStore {
    pub store: Arc<Store>,
}

#[async_trait]
impl NonceStore for SqlNonceStore {
    async fn check_and_record(
        &self,
        nonce: &str,
        now: DateTime<Utc>,
        _keep_until: DateTime<Utc>,
    ) -> Result<bool, NonceStoreError> {
        webhook_book::remember_nonce(&self.store.backend, nonce, now.timestamp_millis())
            .await
            .map_err(|e| NonceStoreError(e.to_string()))
    }

    async fn forget(&self, nonce: &str) -> Result<(), NonceStoreError> {
        crate::on_pool!(&self.store.backend, pool => {
            sqlx::query("DELETE FROM salvage_webhook_nonces WHERE nonce = $1")
                .bind(nonce)
                .execute(pool)
                .await
                .map_err(|e| NonceStoreError(e.to_string()))?;
        });
        Ok(())
    }
}
