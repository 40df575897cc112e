//! Connector state in the queue database (see [`wa2crm_core::StateStore`]). The SQL is the same
//! for both backends, so one macro writes both implementations.

/// Implements `StateStore` for a store with a `pool`, a `clock` and a `state_lock` method;
/// `$max` is the backend's two-argument maximum (`MAX` in SQLite, `GREATEST` in PostgreSQL).
macro_rules! impl_state_store {
    ($store:ty, $max:literal) => {
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

            async fn take_turn(
                &self,
                scope: &str,
                key: &str,
                spacing: std::time::Duration,
            ) -> wa2crm_core::Result<std::time::Duration> {
                let now = self.clock.now_ms();
                let step = spacing.as_millis() as i64;
                // One statement: concurrent instances each get their own turn.
                let next: String = sqlx::query_scalar(concat!(
                    "INSERT INTO connector_state (scope, key, value, updated_at) \
                     VALUES ($1, $2, CAST($3 + $4 AS TEXT), $3) ON CONFLICT (scope, key) DO UPDATE \
                     SET value = CAST(",
                    $max,
                    "(CAST(connector_state.value AS BIGINT), $3) + $4 AS TEXT), updated_at = $3 \
                     RETURNING value"
                ))
                .bind(scope)
                .bind(key)
                .bind(now)
                .bind(step)
                .fetch_one(&self.pool)
                .await
                .map_err(crate::state::to_core)?;
                let next = next.parse::<i64>().unwrap_or(now + step);
                Ok(wa2crm_core::state::turn_wait(next, spacing, now))
            }

            async fn hold_turns(
                &self,
                scope: &str,
                key: &str,
                until_ms: i64,
            ) -> wa2crm_core::Result<()> {
                sqlx::query(concat!(
                    "INSERT INTO connector_state (scope, key, value, updated_at) \
                     VALUES ($1, $2, CAST($3 AS TEXT), $4) ON CONFLICT (scope, key) DO UPDATE \
                     SET value = CAST(",
                    $max,
                    "(CAST(connector_state.value AS BIGINT), $3) AS TEXT), updated_at = $4"
                ))
                .bind(scope)
                .bind(key)
                .bind(until_ms)
                .bind(self.clock.now_ms())
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(crate::state::to_core)
            }

            async fn lock(
                &self,
                scope: &str,
                name: &str,
            ) -> wa2crm_core::Result<wa2crm_core::StateLock> {
                self.state_lock(scope, name).await
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
