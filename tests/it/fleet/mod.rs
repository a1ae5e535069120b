//! The fleet through GraphQL: lifecycles, coordination, visibility, import, queries.

pub(crate) mod bulk;
mod coordination;
mod import;
mod lifecycle;
mod network;
pub(crate) mod notify;
mod queries;
mod visibility;

use ioto_domain::Role;
use ioto_test_support::{Engines, TestApp, TEST_PASSWORD};
use serde_json::Value;

/// A server on real engines with a tenant, one user of `role` and their token.
pub struct Fixture {
    pub app: TestApp,
    pub tenant: ioto_domain::directory::Tenant,
    pub token: String,
}

impl Fixture {
    pub async fn new(role: Role) -> Self {
        Self::on(Engines::Real, role).await
    }

    pub async fn on(engines: Engines, role: Role) -> Self {
        Self::with_app(TestApp::spawn(engines).await, role).await
    }

    pub async fn with_app(app: TestApp, role: Role) -> Self {
        let tenant = app.factory.tenant("Fleet").await;
        let user = app.factory.user(&tenant, role, None).await;
        let token = app.login(user.email.as_str(), TEST_PASSWORD).await;
        Self { app, tenant, token }
    }

    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        self.app.gql(Some(&self.token), query, variables).await
    }

    /// Runs `query` and returns `data.<field>`, failing with the errors when there are any.
    pub async fn ok(&self, query: &str, variables: Value, field: &str) -> Value {
        let body = self.gql(query, variables).await;
        assert!(body["errors"].is_null(), "{query}: {body}");
        body["data"][field].clone()
    }
}
