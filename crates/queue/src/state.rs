//! Connector state in the queue database (see [`wa2crm_core::StateStore`]). The SQL is the same
//! for both backends, so one macro writes both implementations.

/// Implements `StateStore` for a store with a `pool` and a `clock`.
macro_rules! impl_state_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl wa2crm_core::StateStore for $store {
            async fn get_state(
                &self,
                scope: &str,
                key: &str,
            ) -> wa2crm_core::Result<Option<String>> {
                sqlx::query_scalar(
                    "SELECT value FROM connector_state WHERE scope = $1 AND key = $2",
                )
                .bind(scope)
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(crate::state::to_core)
            }

            async fn put_state(
                &self,
                scope: &str,
                key: &str,
                value: &str,
            ) -> wa2crm_core::Result<()> {
                sqlx::query(
                    "INSERT INTO connector_state (scope, key, value, updated_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (scope, key) DO UPDATE \
                     SET value = excluded.value, updated_at = excluded.updated_at",
                )
                .bind(scope)
                .bind(key)
                .bind(value)
                .bind(self.clock.now_ms())
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(crate::state::to_core)
            }

            async fn delete_state(&self, scope: &str, key: &str) -> wa2crm_core::Result<()> {
                sqlx::query("DELETE FROM connector_state WHERE scope = $1 AND key = $2")
                    .bind(scope)
                    .bind(key)
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err(crate::state::to_core)
            }

            async fn scan_state(
                &self,
                scope: &str,
            ) -> wa2crm_core::Result<std::collections::BTreeMap<String, String>> {
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT key, value FROM connector_state WHERE scope = $1 ORDER BY key",
                )
                .bind(scope)
                .fetch_all(&self.pool)
                .await
                .map_err(crate::state::to_core)?;
                Ok(rows.into_iter().collect())
            }
        }
    };
}

pub(crate) use impl_state_store;

/// The queue database being unreachable is worth retrying.
pub(crate) fn to_core(e: sqlx::Error) -> wa2crm_core::Error {
    wa2crm_core::Error::transient(format!("connector state in the queue database: {e}"))
        .with_source(e)
}
