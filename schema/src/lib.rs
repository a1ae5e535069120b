#![doc = include_str!("../README.md")]

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, Schema, ServerError, ServerResult, ValidationResult, Variables};
use ioto_resolvers::{MutationRoot, QueryRoot, Services, SubscriptionRoot};

pub type IotoSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Limits applied to every operation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub introspection: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_complexity: 1000,
            introspection: true,
        }
    }
}

pub fn build(services: Services, limits: Limits) -> IotoSchema {
    let mut b = Schema::build(QueryRoot::default(), MutationRoot::default(), SubscriptionRoot)
        .data(services)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .extension(ErrorCodes);
    if !limits.introspection {
        b = b.disable_introspection();
    }
    b.finish()
}

/// The SDL of the schema (no data needed).
pub fn sdl() -> String {
    Schema::build(QueryRoot::default(), MutationRoot::default(), SubscriptionRoot)
        .finish()
        .sdl()
}

/// Gives errors raised by async-graphql itself (syntax, validation, limits, argument coercion) the
/// code `BAD_USER_INPUT`; resolver errors already carry their own.
struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

fn with_code(mut e: ServerError) -> ServerError {
    let ext = e.extensions.get_or_insert_with(Default::default);
    if ext.get("code").is_none() {
        ext.set("code", "BAD_USER_INPUT");
    }
    e
}

#[async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(with_code)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx)
            .await
            .map_err(|errs| errs.into_iter().map(with_code).collect())
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut resp = next.run(ctx, operation_name).await;
        resp.errors = std::mem::take(&mut resp.errors)
            .into_iter()
            .map(with_code)
            .collect();
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed `schema.graphql` is the API contract; a change to it must be deliberate.
    #[test]
    fn committed_sdl_matches_the_schema() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
        let generated = sdl();
        if std::env::var_os("IOTO_UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "schema/schema.graphql is out of date; run `IOTO_UPDATE_SCHEMA=1 cargo test -p ioto-schema` and commit it"
        );
    }
}
