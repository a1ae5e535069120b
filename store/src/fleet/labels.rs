//! The label catalogue.

use async_trait::async_trait;
use ioto_domain::fleet::labels::LabelSuggestion;
use ioto_domain::ports::LabelCatalogue;
use ioto_domain::{Error, Result, Scope, TenantId};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde_json::json;

use super::*;
use crate::directory::tenant_row;
use crate::entities::label_suggestion;
use crate::error::db;
use crate::pool::{admit, commit, commit_or_roll_back};

#[async_trait]
impl LabelCatalogue for SqlFleet {
    async fn label_catalogue(&self, scope: Scope, tenant: TenantId) -> Result<Vec<LabelSuggestion>> {
        if tenant_in_scope(scope, tenant).is_err() {
            return Ok(Vec::new());
        }
        self.read_all(
            scope,
            label_suggestion::Entity::find()
                .filter(label_suggestion::Column::TenantId.eq(tenant.0))
                .order_by_asc(label_suggestion::Column::Key),
        )
        .await
    }

    async fn put_label_suggestion(&self, scope: Scope, tenant: TenantId, s: LabelSuggestion) -> Result<()> {
        admit(scope, tenant, None)?;
        let txn = self.begin(scope).await?;
        tenant_row(&txn, scope, tenant).await?;
        let model = label_suggestion::ActiveModel {
            tenant_id: Set(tenant.0),
            key: Set(s.key.clone()),
            suggested: Set(json!(s.values)),
            description: Set(s.description.clone()),
        };
        label_suggestion::Entity::insert(model)
            .on_conflict(
                OnConflict::columns([label_suggestion::Column::TenantId, label_suggestion::Column::Key])
                    .update_columns([
                        label_suggestion::Column::Suggested,
                        label_suggestion::Column::Description,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .map_err(db)?;
        commit(txn).await
    }

    async fn remove_label_suggestion(&self, scope: Scope, tenant: TenantId, key: &str) -> Result<()> {
        admit(scope, tenant, None)?;
        let txn = self.begin(scope).await?;
        let removed = label_suggestion::Entity::delete_many()
            .filter(label_suggestion::Column::TenantId.eq(tenant.0))
            .filter(label_suggestion::Column::Key.eq(key))
            .exec(&txn)
            .await
            .map_err(db)
            .and_then(|res| {
                if res.rows_affected == 0 {
                    Err(Error::not_found("label key", key))
                } else {
                    Ok(())
                }
            });
        // A refused removal rolls back now: on SQLite its delete holds the write lock until then.
        commit_or_roll_back(txn, removed).await
    }
}
