use async_graphql::{Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use ioto_domain::sim::Sim;

use super::SimStateKind;

/// A SIM card.
pub struct SimObject(pub Sim);

#[Object(name = "Sim")]
impl SimObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn iccid(&self) -> &str {
        self.0.iccid.as_str()
    }
    async fn imsi(&self) -> &str {
        self.0.imsi.as_str()
    }
    /// E.164 with leading '+'.
    async fn msisdn(&self) -> Option<&str> {
        self.0.msisdn.as_ref().map(|m| m.as_str())
    }
    async fn state(&self) -> SimStateKind {
        self.0.state.into()
    }
    async fn customer_id(&self) -> Option<ID> {
        self.0.customer_id.map(|c| ID(c.to_string()))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// One page of SIMs in ICCID order.
#[derive(SimpleObject)]
pub struct SimPage {
    pub nodes: Vec<SimObject>,
    /// Pass as `after` to get the next page.
    pub end_cursor: Option<String>,
    pub has_next_page: bool,
}
